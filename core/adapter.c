// ==== Adapters: bottleneck (down, GELU, up) and the Conformer convolution block ==
// Conformer: LayerNorm -> pointwise conv C->2D -> GLU -> depthwise conv over the
// T tokens (kernel k, zero 'same' padding) -> BatchNorm -> SiLU -> pointwise D->C.
// Pointwise convs over tokens are linear layers on (N, C) rows. Without LayerNorm
// tensors (adapter.norm: discarded, the reference's behaviour) pw1 reads u itself.
#include <math.h>
#include <string.h>

#include "core/ops.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define ADAPTER_LN_EPS 1e-5f

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

size_t adapter_scratch_floats(int conformer, int N, int C, int D) {
    // bottleneck: dhid (N, D); Conformer: nout, dn (N, C), dp (N, 2D), dg, dc, dy (N, D) each
    return conformer ? (size_t)N * (2 * (size_t)C + 5 * (size_t)D) : (size_t)N * D;
}

// c (B, T, D) = depthwise conv of g over tokens, per example, plus bias, with
// PyTorch's padding="same": (k-1)/2 zeros on the left, k/2 on the right (equal
// for odd k; one more on the right for even k), so
// c[t] = bias + sum_j w[j] g[t + j - (k-1)/2] over the taps inside [0, T).
static void depthwise_forward(float *c, const float *g, const float *w, const float *bias, int B,
                              int T, int D, int k) {
    int pad = (k - 1) / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = c + ((size_t)b * T + t) * D;
            for (int d = 0; d < D; d++) o[d] = bias[d];
            for (int j = 0; j < k; j++) {
                int ts = t + j - pad;
                if (ts < 0 || ts >= T) continue;
                const float *in = g + ((size_t)b * T + ts) * D;
                for (int d = 0; d < D; d++) o[d] += w[(size_t)d * k + j] * in[d];
            }
        }
}

static void depthwise_backward(float *dg, float *dw, float *db, const float *dc, const float *g,
                               const float *w, int B, int T, int D, int k) {
    int pad = (k - 1) / 2;
    if (dg) {
        memset(dg, 0, (size_t)B * T * D * sizeof *dg);
        // examples in parallel: each scatters into its own rows only
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *gr = dc + ((size_t)b * T + t) * D;
                for (int j = 0; j < k; j++) {
                    int ts = t + j - pad;
                    if (ts < 0 || ts >= T) continue;
                    float *o = dg + ((size_t)b * T + ts) * D;
                    for (int d = 0; d < D; d++) o[d] += w[(size_t)d * k + j] * gr[d];
                }
            }
    }
    if (!dw && !db) return;
    // channels in parallel: each (d, j) sums over (b, t) in the same order as one thread would
#pragma omp parallel for schedule(static)
    for (int d = 0; d < D; d++)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                float gd = dc[((size_t)b * T + t) * D + d];
                if (db) db[d] += gd;
                if (!dw) continue;
                for (int j = 0; j < k; j++) {
                    int ts = t + j - pad;
                    if (ts < 0 || ts >= T) continue;
                    dw[(size_t)d * k + j] += gd * g[((size_t)b * T + ts) * D + d];
                }
            }
}

void adapter_forward(float *out, adapter_acts *a, const float *u, const adapter_tensors *w,
                     int conformer, int training, int B, int T, int C, int D, int k) {
    int N = B * T;
    if (!conformer) {
        linear_forward(a->hid, u, w->down_w, w->down_b, N, C, D);
        gelu_forward(a->act, a->hid, (size_t)N * D);
        linear_forward(out, a->act, w->up_w, w->up_b, N, D, C);
        return;
    }
    const float *n = u;
    if (w->norm_w) {
        layernorm_forward(a->nout, a->nmean, a->nrstd, u, w->norm_w, w->norm_b, ADAPTER_LN_EPS, N,
                          C);
        n = a->nout;
    }
    linear_forward(a->p, n, w->pw1_w, w->pw1_b, N, C, 2 * D);
    double t0 = prof_start();
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < (size_t)N; n++)
        for (int d = 0; d < D; d++)
            a->g[n * D + d] = a->p[n * 2 * D + d] * sigmoidf(a->p[n * 2 * D + D + d]);
    depthwise_forward(a->c, a->g, w->dw_w, w->dw_b, B, T, D, k);
#pragma omp parallel for schedule(static)
    for (int d = 0; d < D; d++) {
        float mean, rstd;
        if (training) {
            double s = 0, s2 = 0;
            for (size_t n = 0; n < (size_t)N; n++) s += a->c[n * D + d];
            mean = (float)(s / N);
            for (size_t n = 0; n < (size_t)N; n++) {
                double x = a->c[n * D + d] - mean;
                s2 += x * x;
            }
            float var = (float)(s2 / N);
            rstd = 1.0f / sqrtf(var + BN_EPS);
            w->bn_mean[d] = (1 - BN_MOMENTUM) * w->bn_mean[d] + BN_MOMENTUM * mean;
            w->bn_var[d] = (1 - BN_MOMENTUM) * w->bn_var[d] +
                           BN_MOMENTUM * (N > 1 ? (float)(s2 / (N - 1)) : var);
        } else {
            mean = w->bn_mean[d];
            rstd = 1.0f / sqrtf(w->bn_var[d] + BN_EPS);
        }
        a->bmean[d] = mean;
        a->brstd[d] = rstd;
    }
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < (size_t)N; n++)
        for (int d = 0; d < D; d++) {
            float y = (a->c[n * D + d] - a->bmean[d]) * a->brstd[d] * w->bn_w[d] + w->bn_b[d];
            a->y[n * D + d] = y;
            a->s[n * D + d] = y * sigmoidf(y);
        }
    prof_stop(PROF_ADAPTER, t0);
    linear_forward(out, a->s, w->pw2_w, w->pw2_b, N, D, C);
}

void adapter_backward(float *du, const adapter_tensors *g, float *scratch, const float *dout,
                      const float *u, const adapter_acts *a, const adapter_tensors *w,
                      int conformer, int B, int T, int C, int D, int k) {
    int N = B * T;
    if (!conformer) {
        float *dhid = scratch;  // (N, D)
        linear_backward(dhid, g->up_w, g->up_b, dout, a->act, w->up_w, N, D, C);
        gelu_backward(dhid, dhid, a->hid, (size_t)N * D);
        linear_backward(NULL, g->down_w, g->down_b, dhid, u, NULL, N, C, D);
        if (du) linear_input_backward(du, dhid, w->down_w, N, C, D, 1.0f);
        return;
    }
    float *dn = scratch, *dp = dn + (size_t)N * C, *dg = dp + (size_t)N * 2 * D;
    float *dc = dg + (size_t)N * D, *dy = dc + (size_t)N * D, *nout = dy + (size_t)N * D;
    // The LayerNorm output is not kept: rebuilt from u and its statistics.
    if (w->norm_w) layernorm_apply(nout, u, a->nmean, a->nrstd, w->norm_w, w->norm_b, N, C);
    linear_backward(dy, g->pw2_w, g->pw2_b, dout, a->s, w->pw2_w, N, D, C);
    double t0 = prof_start();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)N * D; i++) {  // SiLU'
        float sg = sigmoidf(a->y[i]);
        dy[i] *= sg * (1.0f + a->y[i] * (1.0f - sg));
    }
    // BatchNorm (batch statistics): dc = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh))
#pragma omp parallel for schedule(static)
    for (int d = 0; d < D; d++) {
        double sdy = 0, sdyx = 0;
        for (size_t n = 0; n < (size_t)N; n++) {
            float xh = (a->c[n * D + d] - a->bmean[d]) * a->brstd[d];
            sdy += dy[n * D + d];
            sdyx += dy[n * D + d] * xh;
        }
        if (g->bn_w) g->bn_w[d] += (float)sdyx;
        if (g->bn_b) g->bn_b[d] += (float)sdy;
        float m1 = (float)(sdy / N), m2 = (float)(sdyx / N);
        for (size_t n = 0; n < (size_t)N; n++) {
            float xh = (a->c[n * D + d] - a->bmean[d]) * a->brstd[d];
            dc[n * D + d] = w->bn_w[d] * a->brstd[d] * (dy[n * D + d] - m1 - xh * m2);
        }
    }
    // The depthwise bias gets no gradient: training-mode BatchNorm subtracts
    // every per-channel constant, so its gradient is exactly zero, and summing
    // dc would only add round-off that AdamW then turns into steps of about
    // lr * 1e-3 (the float64 reference moves it by weight decay alone).
    depthwise_backward(dg, g->dw_w, NULL, dc, a->g, w->dw_w, B, T, D, k);
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < (size_t)N; n++)  // GLU'
        for (int d = 0; d < D; d++) {
            float x1 = a->p[n * 2 * D + d], sg = sigmoidf(a->p[n * 2 * D + D + d]);
            dp[n * 2 * D + d] = dg[n * D + d] * sg;
            dp[n * 2 * D + D + d] = dg[n * D + d] * x1 * sg * (1.0f - sg);
        }
    prof_stop(PROF_ADAPTER, t0);
    if (!w->norm_w) {  // pw1 read u
        linear_backward(NULL, g->pw1_w, g->pw1_b, dp, u, NULL, N, C, 2 * D);
        if (du) linear_input_backward(du, dp, w->pw1_w, N, C, 2 * D, 1.0f);
        return;
    }
    linear_backward(dn, g->pw1_w, g->pw1_b, dp, nout, w->pw1_w, N, C, 2 * D);
    layernorm_backward(du, g->norm_w, g->norm_b, dn, u, w->norm_w, a->nmean, a->nrstd, N, C);
}
