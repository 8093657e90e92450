// ==== Mixtures of bottleneck adapters: Dense-MoA (router) and Soft-MoA (slots) ====
// Dense: out = sum_e softmax(u R^T + b)_e * E_e(u) per token. Each expert's
// weighted output p_e (act_e W_e^T + b_e) is one GEMM that accumulates into
// out: [p_e act_e | p_e] (N, D+1) times [W_e | b_e]^T (D+1, C), so no expert
// output (N, C) is materialised, kept or rebuilt. Its backward gets
// dout [W_e | b_e] (N, D+1) from one GEMM: the first D columns give the
// gradient of act_e, and with act_e the router gradient dout . E_e(u).
// Soft (per example, tokens X (T, C), slots Phi (C, E*S)): logits = X Phi;
// dispatch Dp = softmax over tokens, combine Cb = softmax over slots; slot
// inputs Xs = Dp^T X; slot outputs Ys = E_e(Xs) for expert e's S slots;
// out = Cb Ys. docs/METHODS.md.
#include <math.h>
#include <string.h>

#include "core/gemm.h"
#include "core/ops.h"

size_t moa_scratch_floats(int soft, int B, int T, int C, int D, int E, int S) {
    size_t N = (size_t)B * T;
    if (!soft)  // dr, dlog (N, E); t, a (N, D+1); w, dw (C, D+1); dhid (N, D)
        return 2 * N * E + 2 * N * (D + 1) + 2 * (size_t)C * (D + 1) + N * D;
    // dCb, dDp (B, T, E*S); dys, dxs (E, B, S, C); expert scratch (B*S, D)
    size_t R = (size_t)B * S;
    return 2 * N * E * S + 2 * (size_t)E * R * C + R * D;
}

// wb (C, D+1) = [W | b] for an expert's up projection W (C, D), bias b (C).
static void pack_up(float *wb, const adapter_tensors *x, int C, int D) {
    for (int c = 0; c < C; c++) {
        memcpy(wb + (size_t)c * (D + 1), x->up_w + (size_t)c * D, (size_t)D * sizeof *wb);
        wb[(size_t)c * (D + 1) + D] = x->up_b[c];
    }
}

// ap (N, D+1) = [p_e act | p_e] with p_e column e of probs (N, E).
static void pack_weighted(float *ap, const float *act, const float *probs, int e, int N, int D,
                          int E) {
#pragma omp parallel for schedule(static) if ((size_t)N * D > 65536)
    for (int n = 0; n < N; n++) {
        float p = probs[(size_t)n * E + e];
        for (int d = 0; d < D; d++) ap[(size_t)n * (D + 1) + d] = p * act[(size_t)n * D + d];
        ap[(size_t)n * (D + 1) + D] = p;
    }
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
        prof_stop(PROF_ADAPTER, t0);
        float *ap = a->y, *wb = ap + (size_t)N * (D + 1);  // scratch, not kept
        for (int e = 0; e < E; e++) {
            const adapter_tensors *x = &w->experts[e];
            adapter_acts *xa = &a->ex[e];
            linear_forward(xa->hid, u, x->down_w, x->down_b, N, C, D);
            gelu_forward(xa->act, xa->hid, (size_t)N * D);
            t0 = prof_start();
            pack_up(wb, x, C, D);
            pack_weighted(ap, xa->act, a->probs, e, N, D, E);
            prof_stop(PROF_ADAPTER, t0);
            t0 = prof_start();
            gemm(0, 1, N, C, D + 1, 1.0f, ap, D + 1, wb,
                        D + 1, e ? 1.0f : 0.0f, out, C, NULL);
            prof_stop(PROF_GEMM, t0);
            petal_gemm_flops += 2.0 * N * C * (D + 1);
        }
        return;
    }
    int ES = E * S, R = B * S;
    for (int b = 0; b < B; b++) {
        const float *x = u + (size_t)b * T * C;
        float *dp = a->dp + (size_t)b * T * ES, *cb = a->cb + (size_t)b * T * ES;
        gemm(0, 0, T, ES, C, 1.0f, x, C, w->slots, ES,
                    0.0f, dp, ES, NULL);
        memcpy(cb, dp, (size_t)T * ES * sizeof *cb);
        for (int j = 0; j < ES; j++) softmax_row(dp + j, T, ES);   // over tokens
        for (int t = 0; t < T; t++) softmax_row(cb + (size_t)t * ES, ES, 1);  // over slots
        for (int e = 0; e < E; e++)
            gemm(1, 0, S, C, T, 1.0f, dp + e * S, ES, x,
                        C, 0.0f, a->xs + ((size_t)e * R + (size_t)b * S) * C, C, NULL);
    }
    for (int e = 0; e < E; e++)
        adapter_forward(a->y + (size_t)e * R * C, &a->ex[e], a->xs + (size_t)e * R * C,
                        &w->experts[e], 0, 1, R, 1, C, D, 0);
    for (int b = 0; b < B; b++)
        for (int e = 0; e < E; e++)
            gemm(0, 0, T, C, S, 1.0f,
                        a->cb + (size_t)b * T * ES + e * S, ES,
                        a->y + ((size_t)e * R + (size_t)b * S) * C, C, e ? 1.0f : 0.0f,
                        out + (size_t)b * T * C, C, NULL);
    petal_gemm_flops += 2.0 * B * T * (double)ES * C * 3;
}

void moa_backward(float *du, const moa_tensors *g, float *scratch, const float *dout,
                  const float *u, const moa_acts *a, const moa_tensors *w, int soft, int B, int T,
                  int C, int D, int E, int S) {
    int N = B * T;
    if (!soft) {
        size_t D1 = (size_t)D + 1;
        float *dr = scratch, *dlog = dr + (size_t)N * E, *t = dlog + (size_t)N * E;
        float *ap = t + (size_t)N * D1, *wb = ap + (size_t)N * D1, *dwb = wb + (size_t)C * D1;
        float *dhid = dwb + (size_t)C * D1;
        for (int e = 0; e < E; e++) {
            const adapter_tensors *x = &w->experts[e], *gx = &g->experts[e];
            const adapter_acts *xa = &a->ex[e];
            double t0 = prof_start();
            pack_up(wb, x, C, D);
            prof_stop(PROF_ADAPTER, t0);
            // t = dout [W | b]: dout W (the gradient of p_e act_e) and dout . b
            t0 = prof_start();
            gemm(0, 0, N, (int)D1, C, 1.0f, dout, C, wb,
                        (int)D1, 0.0f, t, (int)D1, NULL);
            prof_stop(PROF_GEMM, t0);
            petal_gemm_flops += 2.0 * N * C * D1;
            if (gx->up_w || gx->up_b) {  // [dW | db] += dout^T [p act | p]
                t0 = prof_start();
                pack_weighted(ap, xa->act, a->probs, e, N, D, E);
                prof_stop(PROF_ADAPTER, t0);
                t0 = prof_start();
                gemm(1, 0, C, (int)D1, N, 1.0f, dout, C,
                            ap, (int)D1, 0.0f, dwb, (int)D1, NULL);
                prof_stop(PROF_GEMM, t0);
                petal_gemm_flops += 2.0 * N * C * D1;
                for (int c = 0; c < C; c++) {
                    if (gx->up_w)
                        for (int d = 0; d < D; d++)
                            gx->up_w[(size_t)c * D + d] += dwb[(size_t)c * D1 + d];
                    if (gx->up_b) gx->up_b[c] += dwb[(size_t)c * D1 + D];
                }
            }
            // router: dr_e = dout . E_e(u) = (dout W) . act + dout . b;
            // expert: dhid = p_e (dout W) * gelu'(hid)
            t0 = prof_start();
#pragma omp parallel for schedule(static) if ((size_t)N * D > 65536)
            for (int n = 0; n < N; n++) {
                const float *tn = t + (size_t)n * D1, *an = xa->act + (size_t)n * D;
                float p = a->probs[(size_t)n * E + e], s = tn[D];
                for (int d = 0; d < D; d++) {
                    s += tn[d] * an[d];
                    dhid[(size_t)n * D + d] = p * tn[d];
                }
                dr[(size_t)n * E + e] = s;
            }
            prof_stop(PROF_ADAPTER, t0);
            gelu_backward(dhid, dhid, xa->hid, (size_t)N * D);
            linear_backward(NULL, gx->down_w, gx->down_b, dhid, u, NULL, N, C, D);
            if (du) linear_input_backward(du, dhid, x->down_w, N, C, D, 1.0f);
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
            gemm(0, 1, T, S, C, 1.0f, dob, C, ys, C,
                        0.0f, dcb + (size_t)b * T * ES + e * S, ES, NULL);
            gemm(1, 0, S, C, T, 1.0f, cb + e * S, ES,
                        dob, C, 0.0f, dys + ((size_t)e * R + (size_t)b * S) * C, C, NULL);
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
            gemm(0, 1, T, S, C, 1.0f, x, C, dx, C, 0.0f,
                        ddpb + e * S, ES, NULL);
            if (dub)
                gemm(0, 0, T, C, S, 1.0f, dp + e * S,
                            ES, dx, C, 1.0f, dub, C, NULL);
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
            gemm(1, 0, C, ES, T, 1.0f, x, C, dcbb, ES,
                        1.0f, g->slots, ES, NULL);
        if (dub)
            gemm(0, 1, T, C, ES, 1.0f, dcbb, ES,
                        w->slots, ES, 1.0f, dub, C, NULL);
    }
    petal_gemm_flops += 2.0 * B * T * (double)ES * C * 6;
}
