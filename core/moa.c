// ==== Mixtures of bottleneck adapters: Dense-MoA (router) and Soft-MoA (slots) ====
// Dense: out = sum_e softmax(u R^T + b)_e * E_e(u) per token. The E experts
// run side by side as one bottleneck of width E*D: their down projections are
// one GEMM u [Wd_1; ..; Wd_E]^T (N, E*D), GELU is one pass, and the weighted
// up projections are one GEMM that writes out: [p_1 act_1 | p_1 | .. | p_E
// act_E | p_E] (N, E(D+1)) times [W_1 | b_1 | .. | W_E | b_E]^T (E(D+1), C),
// so no expert output (N, C) is materialised, kept or rebuilt. Its backward
// gets dout [W_e | b_e] for every e from one GEMM: the first D columns of each
// block give the gradient of p_e act_e, and with act_e the router gradient
// dout . E_e(u). (One GEMM per product instead of one per expert: the small
// products are the cost here, and each is a pass of the thread pool.)
// Soft (per example, tokens X (T, C), slots Phi (C, E*S)): logits = X Phi;
// dispatch Dp = softmax over tokens, combine Cb = softmax over slots; slot
// inputs Xs = Dp^T X; slot outputs Ys = E_e(Xs) for expert e's S slots;
// out = Cb Ys. docs/METHODS.md.
#include <math.h>
#include <string.h>

#include "core/gemm.h"
#include "core/ops.h"
#include "core/vmath.h"

size_t moa_dense_forward_floats(size_t N, int C, int D, int E) {
    // ap (N, E(D+1)); wb (C, E(D+1)); wd (E*D, C); bd (E*D)
    return (N + (size_t)C) * E * (D + 1) + (size_t)E * D * (C + 1);
}

size_t moa_scratch_floats(int soft, int B, int T, int C, int D, int E, int S) {
    size_t N = (size_t)B * T;
    if (!soft)  // dr, dlog (N, E); t, ap (N, E(D+1)); wb, dwb (C, E(D+1)); dhid (N, E*D);
                // wd, dwd (E*D, C); bd, dbd (E*D)
        return moa_dense_forward_floats(N, C, D, E) + 2 * N * E + N * (size_t)E * (D + 1) +
               (size_t)C * E * (D + 1) + N * (size_t)E * D + (size_t)E * D * (C + 1);
    // dCb, dDp (B, T, E*S); dys, dxs (E, B, S, C); expert scratch (B*S, D)
    size_t R = (size_t)B * S;
    return 2 * N * E * S + 2 * (size_t)E * R * C + R * D;
}

// wb (C, E(D+1)): row c = [W_1[c] | b_1[c] | .. | W_E[c] | b_E[c]] of the experts'
// up projections W_e (C, D), b_e (C).
static void pack_up(float *wb, const adapter_tensors *x, int C, int D, int E) {
    size_t D1 = (size_t)D + 1, ld = (size_t)E * D1;
#pragma omp parallel for schedule(static) if ((size_t)C * ld > 65536)
    for (int c = 0; c < C; c++)
        for (int e = 0; e < E; e++) {
            memcpy(wb + c * ld + e * D1, x[e].up_w + (size_t)c * D, (size_t)D * sizeof *wb);
            wb[c * ld + e * D1 + D] = x[e].up_b[c];
        }
}

// wd (E*D, C) = [Wd_1; ..; Wd_E], bd (E*D) = [bd_1 | ..]: the experts' down projections.
static void pack_down(float *wd, float *bd, const adapter_tensors *x, int C, int D, int E) {
    for (int e = 0; e < E; e++) {
        memcpy(wd + (size_t)e * D * C, x[e].down_w, (size_t)D * C * sizeof *wd);
        memcpy(bd + (size_t)e * D, x[e].down_b, (size_t)D * sizeof *bd);
    }
}

// ap row n (E(D+1)) = [p_1 act_1 | p_1 | .. ] from probs (N, E) and act (N, E*D).
static inline void weighted_row(float *ap, const float *act, const float *p, int D, int E) {
    for (int e = 0; e < E; e++) {
        float *o = ap + (size_t)e * (D + 1);
        for (int d = 0; d < D; d++) o[d] = p[e] * act[(size_t)e * D + d];
        o[D] = p[e];
    }
}

// Row of slot j = e*S + s of example b in the (E, B, S, C) slot arrays.
static inline size_t slot_row(int j, int b, int S, int R) {
    return (size_t)(j / S) * R + (size_t)b * S + j % S;
}

// y (n) += a x; n % VL == 0 (C is a multiple of 16).
static inline void axpy(float *y, float a, const float *x, int n) {
    for (int c = 0; c < n; c += VL) vstore(y + c, vload(y + c) + a * vload(x + c));
}

// x . y over n (% VL == 0), lanes summed in a fixed order.
static inline float vdot(const float *x, const float *y, int n) {
    vfloat s = {0};
    for (int c = 0; c < n; c += VL) s += vload(x + c) * vload(y + c);
    return vhsum(s);
}

static void softmax_row(float *r, int n, int stride) {
    float mx = r[0];
    for (int j = 1; j < n; j++) mx = r[(size_t)j * stride] > mx ? r[(size_t)j * stride] : mx;
    float s = 0.0f;
    for (int j = 0; j < n; j++) s += (r[(size_t)j * stride] = expf(r[(size_t)j * stride] - mx));
    for (int j = 0; j < n; j++) r[(size_t)j * stride] /= s;
}

void moa_forward(float *out, moa_acts *a, const float *u, const moa_tensors *w, int soft, int B,
                 int T, int C, int D, int E, int S) {
    int N = B * T;
    if (!soft) {
        int ED = E * D, E1 = E * (D + 1);
        float *ap = a->y, *wb = ap + (size_t)N * E1;  // scratch, not kept
        float *wd = wb + (size_t)C * E1, *bd = wd + (size_t)ED * C;
        float *hid = a->ex[0].hid, *act = a->ex[0].act;  // (N, E*D) each, kept
        linear_forward(a->probs, u, w->router_w, w->router_b, N, C, E);
        double t0 = prof_start();
        pack_down(wd, bd, w->experts, C, D, E);
        pack_up(wb, w->experts, C, D, E);
        prof_stop(PROF_ADAPTER, t0);
        linear_forward(hid, u, wd, bd, N, C, ED);
        gelu_forward(act, hid, (size_t)N * ED);
        t0 = prof_start();
#pragma omp parallel for schedule(static) if ((size_t)N * E1 > 16384)
        for (int n = 0; n < N; n++) {
            float *p = a->probs + (size_t)n * E;
            softmax_row(p, E, 1);
            weighted_row(ap + (size_t)n * E1, act + (size_t)n * ED, p, D, E);
        }
        prof_stop(PROF_ADAPTER, t0);
        t0 = prof_start();
        gemm(0, 1, N, C, E1, 1.0f, ap, E1, wb, E1, 0.0f, out, C, NULL);
        prof_stop(PROF_GEMM, t0);
        petal_gemm_flops += 2.0 * N * C * E1;
        return;
    }
    // The slot products have depth T or E*S (a few): row passes of the pool
    // (each output row summed in a fixed order by one thread) instead of one
    // GEMM per example and expert, thousands of calls a step at these shapes.
    int ES = E * S, R = B * S;
    double t0 = prof_start();
    gemm(0, 0, N, ES, C, 1.0f, u, C, w->slots, ES, 0.0f, a->dp, ES, NULL);  // logits, every token
    prof_stop(PROF_GEMM, t0);
    t0 = prof_start();
    memcpy(a->cb, a->dp, (size_t)N * ES * sizeof *a->cb);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *dp = a->dp + (size_t)b * T * ES, *cb = a->cb + (size_t)b * T * ES;
        for (int j = 0; j < ES; j++) softmax_row(dp + j, T, ES);              // over tokens
        for (int t = 0; t < T; t++) softmax_row(cb + (size_t)t * ES, ES, 1);  // over slots
    }
    // slot inputs: xs[e, b, s] = sum_t dp[b, t, eS+s] x[b, t]
#pragma omp parallel for schedule(static)
    for (int bj = 0; bj < B * ES; bj++) {
        int b = bj / ES, j = bj % ES;
        float *o = a->xs + slot_row(j, b, S, R) * C;
        memset(o, 0, (size_t)C * sizeof *o);
        for (int t = 0; t < T; t++)
            axpy(o, a->dp[((size_t)b * T + t) * ES + j], u + ((size_t)b * T + t) * C, C);
    }
    prof_stop(PROF_ADAPTER, t0);
    for (int e = 0; e < E; e++)
        adapter_forward(a->y + (size_t)e * R * C, &a->ex[e], a->xs + (size_t)e * R * C,
                        &w->experts[e], 0, 1, R, 1, C, D, 0);
    // out[b, t] = sum_j cb[b, t, j] ys[j]
    t0 = prof_start();
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        memset(o, 0, (size_t)C * sizeof *o);
        for (int j = 0; j < ES; j++)
            axpy(o, a->cb[(size_t)n * ES + j], a->y + slot_row(j, n / T, S, R) * C, C);
    }
    prof_stop(PROF_ADAPTER, t0);
    petal_gemm_flops += 2.0 * B * T * (double)ES * C * 3;
}

void moa_backward(float *du, const moa_tensors *g, float *scratch, const float *dout,
                  const float *u, const moa_acts *a, const moa_tensors *w, int soft, int B, int T,
                  int C, int D, int E, int S) {
    int N = B * T;
    if (!soft) {
        int ED = E * D, E1 = E * (D + 1);
        size_t D1 = (size_t)D + 1;
        float *ap = scratch, *wb = ap + (size_t)N * E1;  // the forward's packed operands
        float *wd = wb + (size_t)C * E1, *bd = wd + (size_t)ED * C;
        float *dr = scratch + moa_dense_forward_floats((size_t)N, C, D, E), *dlog = dr + (size_t)N * E;
        float *t = dlog + (size_t)N * E, *dwb = t + (size_t)N * E1, *dhid = dwb + (size_t)C * E1;
        float *dwd = dhid + (size_t)N * ED, *dbd = dwd + (size_t)ED * C;
        const float *hid = a->ex[0].hid, *act = a->ex[0].act;
        double t0 = prof_start();
        pack_up(wb, w->experts, C, D, E);
        pack_down(wd, bd, w->experts, C, D, E);
        prof_stop(PROF_ADAPTER, t0);
        // t = dout [W_1 | b_1 | ..]: per expert dout W_e (the gradient of p_e act_e) and dout . b_e
        t0 = prof_start();
        gemm(0, 0, N, E1, C, 1.0f, dout, C, wb, E1, 0.0f, t, E1, NULL);
        prof_stop(PROF_GEMM, t0);
        petal_gemm_flops += 2.0 * N * C * E1;
        int up = 0;
        for (int e = 0; e < E; e++) up |= g->experts[e].up_w || g->experts[e].up_b;
        if (up) {  // [dW_e | db_e] += dout^T [p_e act_e | p_e]
            t0 = prof_start();
#pragma omp parallel for schedule(static) if ((size_t)N * E1 > 16384)
            for (int n = 0; n < N; n++)
                weighted_row(ap + (size_t)n * E1, act + (size_t)n * ED, a->probs + (size_t)n * E, D, E);
            prof_stop(PROF_ADAPTER, t0);
            t0 = prof_start();
            gemm(1, 0, C, E1, N, 1.0f, dout, C, ap, E1, 0.0f, dwb, E1, NULL);
            prof_stop(PROF_GEMM, t0);
            petal_gemm_flops += 2.0 * N * C * E1;
            t0 = prof_start();
#pragma omp parallel for schedule(static) if ((size_t)C * E1 > 65536)
            for (int c = 0; c < C; c++)
                for (int e = 0; e < E; e++) {
                    const adapter_tensors *gx = &g->experts[e];
                    const float *src = dwb + (size_t)c * E1 + e * D1;
                    if (gx->up_w)
                        for (int d = 0; d < D; d++) gx->up_w[(size_t)c * D + d] += src[d];
                    if (gx->up_b) gx->up_b[c] += src[D];
                }
            prof_stop(PROF_ADAPTER, t0);
        }
        // router: dr_e = dout . E_e(u) = (dout W_e) . act_e + dout . b_e, then the
        // softmax over experts; experts: dhid_e = p_e (dout W_e) * gelu'(hid_e)
        t0 = prof_start();
#pragma omp parallel for schedule(static) if ((size_t)N * E1 > 16384)
        for (int n = 0; n < N; n++) {
            const float *p = a->probs + (size_t)n * E, *an = act + (size_t)n * ED;
            float *drn = dr + (size_t)n * E, *dh = dhid + (size_t)n * ED;
            float dot = 0.0f;
            for (int e = 0; e < E; e++) {
                const float *tn = t + (size_t)n * E1 + e * D1;
                float s = tn[D];
                for (int d = 0; d < D; d++) {
                    s += tn[d] * an[(size_t)e * D + d];
                    dh[(size_t)e * D + d] = p[e] * tn[d];
                }
                drn[e] = s;
            }
            for (int e = 0; e < E; e++) dot += p[e] * drn[e];
            for (int e = 0; e < E; e++) dlog[(size_t)n * E + e] = p[e] * (drn[e] - dot);
        }
        prof_stop(PROF_ADAPTER, t0);
        gelu_backward(dhid, dhid, hid, (size_t)N * ED);
        // down projections: [dWd_1; ..] = dhid^T u, column sums for the biases, then
        // each expert's rows into its own gradient
        int down = 0;
        for (int e = 0; e < E; e++) down |= g->experts[e].down_w || g->experts[e].down_b;
        if (down) {
            memset(dbd, 0, (size_t)ED * sizeof *dbd);
            t0 = prof_start();
            gemm(1, 0, ED, C, N, 1.0f, dhid, ED, u, C, 0.0f, dwd, C, NULL);
            prof_stop(PROF_GEMM, t0);
            petal_gemm_flops += 2.0 * N * C * ED;
            bias_backward(dbd, dhid, N, ED);
            t0 = prof_start();
            for (int e = 0; e < E; e++) {
                const adapter_tensors *gx = &g->experts[e];
                if (gx->down_w) {
                    const float *src = dwd + (size_t)e * D * C;
#pragma omp parallel for schedule(static) if ((size_t)D * C > 65536)
                    for (size_t i = 0; i < (size_t)D * C; i++) gx->down_w[i] += src[i];
                }
                if (gx->down_b)
                    for (int d = 0; d < D; d++) gx->down_b[d] += dbd[(size_t)e * D + d];
            }
            prof_stop(PROF_ADAPTER, t0);
        }
        if (du) linear_input_backward(du, dhid, wd, N, C, ED, 1.0f);
        linear_backward(NULL, g->router_w, g->router_b, dlog, u, NULL, N, C, E);
        if (du) linear_input_backward(du, dlog, w->router_w, N, C, E, 1.0f);
        return;
    }
    int ES = E * S, R = B * S;
    float *dcb = scratch, *ddp = dcb + (size_t)N * ES, *dys = ddp + (size_t)N * ES;
    float *dxs = dys + (size_t)E * R * C, *exs = dxs + (size_t)E * R * C;
    double t0 = prof_start();
#pragma omp parallel
    {
        // slot outputs: dys[j] = sum_t cb[b, t, j] dout[b, t]
#pragma omp for schedule(static) nowait
        for (int bj = 0; bj < B * ES; bj++) {
            int b = bj / ES, j = bj % ES;
            float *o = dys + slot_row(j, b, S, R) * C;
            memset(o, 0, (size_t)C * sizeof *o);
            for (int t = 0; t < T; t++)
                axpy(o, a->cb[((size_t)b * T + t) * ES + j], dout + ((size_t)b * T + t) * C, C);
        }
        // combine weights: dcb[b, t, j] = dout[b, t] . ys[j]
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++)
            for (int j = 0; j < ES; j++)
                dcb[(size_t)n * ES + j] = vdot(dout + (size_t)n * C, a->y + slot_row(j, n / T, S, R) * C, C);
    }
    memset(dxs, 0, (size_t)E * R * C * sizeof *dxs);
    prof_stop(PROF_ADAPTER, t0);
    for (int e = 0; e < E; e++)
        adapter_backward(dxs + (size_t)e * R * C, &g->experts[e], exs, dys + (size_t)e * R * C,
                         a->xs + (size_t)e * R * C, &a->ex[e], &w->experts[e], 0, R, 1, C, D, 0);
    t0 = prof_start();
    // dispatch weights: ddp[b, t, j] = x[b, t] . dxs[j]; du[b, t] += sum_j dp[b, t, j] dxs[j]
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = u + (size_t)n * C;
        for (int j = 0; j < ES; j++) {
            const float *dx = dxs + slot_row(j, n / T, S, R) * C;
            ddp[(size_t)n * ES + j] = vdot(x, dx, C);
            if (du) axpy(du + (size_t)n * C, a->dp[(size_t)n * ES + j], dx, C);
        }
    }
    // logits gradient: combine softmax over slots (rows), dispatch over tokens (columns)
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *dp = a->dp + (size_t)b * T * ES, *cb = a->cb + (size_t)b * T * ES;
        float *ddpb = ddp + (size_t)b * T * ES, *dcbb = dcb + (size_t)b * T * ES;
        for (int t = 0; t < T; t++) {
            float dot = 0.0f;
            for (int j = 0; j < ES; j++) dot += cb[(size_t)t * ES + j] * dcbb[(size_t)t * ES + j];
            for (int j = 0; j < ES; j++)
                dcbb[(size_t)t * ES + j] = cb[(size_t)t * ES + j] * (dcbb[(size_t)t * ES + j] - dot);
        }
        for (int j = 0; j < ES; j++) {
            float dot = 0.0f;
            for (int t = 0; t < T; t++) dot += dp[(size_t)t * ES + j] * ddpb[(size_t)t * ES + j];
            for (int t = 0; t < T; t++)
                dcbb[(size_t)t * ES + j] += dp[(size_t)t * ES + j] * (ddpb[(size_t)t * ES + j] - dot);
        }
    }
    prof_stop(PROF_ADAPTER, t0);
    // slot parameters and the input through the logits, every token at once
    t0 = prof_start();
    if (g->slots) gemm(1, 0, C, ES, N, 1.0f, u, C, dcb, ES, 1.0f, g->slots, ES, NULL);
    if (du) gemm(0, 1, N, C, ES, 1.0f, dcb, ES, w->slots, ES, 1.0f, du, C, NULL);
    prof_stop(PROF_GEMM, t0);
    petal_gemm_flops += 2.0 * B * T * (double)ES * C * 6;
}
