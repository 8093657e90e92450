// ==== Mixtures of bottleneck adapters: Dense-MoA (router) and Soft-MoA (slots) ====
// Dense: out = sum_e softmax(u R^T + b)_e * E_e(u) per token.
// Soft (per example, tokens X (T, C), slots Phi (C, E*S)): logits = X Phi;
// dispatch Dp = softmax over tokens, combine Cb = softmax over slots; slot
// inputs Xs = Dp^T X; slot outputs Ys = E_e(Xs) for expert e's S slots;
// out = Cb Ys. docs/METHODS.md.
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/ops.h"

size_t moa_scratch_floats(int soft, int B, int T, int C, int D, int E, int S) {
    size_t N = (size_t)B * T;
    if (!soft)  // dr, dlog (N, E); dy, one expert's output (N, C); expert scratch (N, D)
        return 2 * N * E + 2 * N * C + N * D;
    // dCb, dDp (B, T, E*S); dys, dxs (E, B, S, C); expert scratch (B*S, D)
    size_t R = (size_t)B * S;
    return 2 * N * E * S + 2 * (size_t)E * R * C + R * D;
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
        linear_forward(a->probs, u, w->router_w, w->router_b, N, C, E);
        double t0 = prof_start();
        for (int n = 0; n < N; n++) softmax_row(a->probs + (size_t)n * E, E, 1);
        memset(out, 0, (size_t)N * C * sizeof *out);
        prof_stop(PROF_ADAPTER, t0);
        for (int e = 0; e < E; e++) {
            float *ye = a->y;  // one expert at a time; not kept
            adapter_forward(ye, &a->ex[e], u, &w->experts[e], 0, 1, B, T, C, D, 0);
            t0 = prof_start();
#pragma omp parallel for schedule(static)
            for (int n = 0; n < N; n++) {
                float p = a->probs[(size_t)n * E + e];
                for (int c = 0; c < C; c++) out[(size_t)n * C + c] += p * ye[(size_t)n * C + c];
            }
            prof_stop(PROF_ADAPTER, t0);
        }
        return;
    }
    int ES = E * S, R = B * S;
    for (int b = 0; b < B; b++) {
        const float *x = u + (size_t)b * T * C;
        float *dp = a->dp + (size_t)b * T * ES, *cb = a->cb + (size_t)b * T * ES;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, ES, C, 1.0f, x, C, w->slots, ES,
                    0.0f, dp, ES);
        memcpy(cb, dp, (size_t)T * ES * sizeof *cb);
        for (int j = 0; j < ES; j++) softmax_row(dp + j, T, ES);   // over tokens
        for (int t = 0; t < T; t++) softmax_row(cb + (size_t)t * ES, ES, 1);  // over slots
        for (int e = 0; e < E; e++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, C, T, 1.0f, dp + e * S, ES, x,
                        C, 0.0f, a->xs + ((size_t)e * R + (size_t)b * S) * C, C);
    }
    for (int e = 0; e < E; e++)
        adapter_forward(a->y + (size_t)e * R * C, &a->ex[e], a->xs + (size_t)e * R * C,
                        &w->experts[e], 0, 1, R, 1, C, D, 0);
    for (int b = 0; b < B; b++)
        for (int e = 0; e < E; e++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, C, S, 1.0f,
                        a->cb + (size_t)b * T * ES + e * S, ES,
                        a->y + ((size_t)e * R + (size_t)b * S) * C, C, e ? 1.0f : 0.0f,
                        out + (size_t)b * T * C, C);
    petal_gemm_flops += 2.0 * B * T * (double)ES * C * 3;
}

void moa_backward(float *du, const moa_tensors *g, float *scratch, const float *dout,
                  const float *u, const moa_acts *a, const moa_tensors *w, int soft, int B, int T,
                  int C, int D, int E, int S) {
    int N = B * T;
    if (!soft) {
        float *dr = scratch, *dlog = dr + (size_t)N * E, *dy = dlog + (size_t)N * E;
        float *ye = dy + (size_t)N * C, *exs = ye + (size_t)N * C;
        for (int e = 0; e < E; e++) {
            // the expert's output again, from its kept GELU activations
            linear_forward_recompute(ye, a->ex[e].act, w->experts[e].up_w, w->experts[e].up_b, N,
                                     D, C);
            double t0 = prof_start();
#pragma omp parallel for schedule(static)
            for (int n = 0; n < N; n++) {
                float p = a->probs[(size_t)n * E + e], s = 0.0f;
                for (int c = 0; c < C; c++) {
                    s += dout[(size_t)n * C + c] * ye[(size_t)n * C + c];
                    dy[(size_t)n * C + c] = p * dout[(size_t)n * C + c];
                }
                dr[(size_t)n * E + e] = s;
            }
            prof_stop(PROF_ADAPTER, t0);
            adapter_backward(du, &g->experts[e], exs, dy, u, &a->ex[e], &w->experts[e], 0, B, T,
                             C, D, 0);
        }
        for (int n = 0; n < N; n++) {  // softmax backward over experts
            const float *p = a->probs + (size_t)n * E;
            float dot = 0.0f;
            for (int e = 0; e < E; e++) dot += p[e] * dr[(size_t)n * E + e];
            for (int e = 0; e < E; e++) dlog[(size_t)n * E + e] = p[e] * (dr[(size_t)n * E + e] - dot);
        }
        linear_backward(NULL, g->router_w, g->router_b, dlog, u, NULL, N, C, E);
        if (du) linear_input_backward(du, dlog, w->router_w, N, C, E, 1.0f);
        return;
    }
    int ES = E * S, R = B * S;
    float *dcb = scratch, *ddp = dcb + (size_t)N * ES, *dys = ddp + (size_t)N * ES;
    float *dxs = dys + (size_t)E * R * C, *exs = dxs + (size_t)E * R * C;
    for (int b = 0; b < B; b++) {
        const float *dob = dout + (size_t)b * T * C;
        const float *cb = a->cb + (size_t)b * T * ES;
        for (int e = 0; e < E; e++) {
            const float *ys = a->y + ((size_t)e * R + (size_t)b * S) * C;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, C, 1.0f, dob, C, ys, C,
                        0.0f, dcb + (size_t)b * T * ES + e * S, ES);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, C, T, 1.0f, cb + e * S, ES,
                        dob, C, 0.0f, dys + ((size_t)e * R + (size_t)b * S) * C, C);
        }
    }
    memset(dxs, 0, (size_t)E * R * C * sizeof *dxs);
    for (int e = 0; e < E; e++)
        adapter_backward(dxs + (size_t)e * R * C, &g->experts[e], exs, dys + (size_t)e * R * C,
                         a->xs + (size_t)e * R * C, &a->ex[e], &w->experts[e], 0, R, 1, C, D, 0);
    for (int b = 0; b < B; b++) {
        const float *x = u + (size_t)b * T * C;
        const float *dp = a->dp + (size_t)b * T * ES, *cb = a->cb + (size_t)b * T * ES;
        float *ddpb = ddp + (size_t)b * T * ES, *dcbb = dcb + (size_t)b * T * ES;
        float *dub = du ? du + (size_t)b * T * C : NULL;
        for (int e = 0; e < E; e++) {
            const float *dx = dxs + ((size_t)e * R + (size_t)b * S) * C;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, C, 1.0f, x, C, dx, C, 0.0f,
                        ddpb + e * S, ES);
            if (dub)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, C, S, 1.0f, dp + e * S,
                            ES, dx, C, 1.0f, dub, C);
        }
        // logits gradient: combine softmax over slots (rows), dispatch over tokens (columns)
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
        if (g->slots)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, ES, T, 1.0f, x, C, dcbb, ES,
                        1.0f, g->slots, ES);
        if (dub)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, C, ES, 1.0f, dcbb, ES,
                        w->slots, ES, 1.0f, dub, C);
    }
    petal_gemm_flops += 2.0 * B * T * (double)ES * C * 6;
}
