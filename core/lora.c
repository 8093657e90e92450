// ==== LoRA: out += s * (u A^T) B^T beside a frozen projection ====================
// A (r, C) is the down projection, B (OC, r) the up projection. out may be a
// strided view (ldo) into a wider buffer, e.g. the q, k or v columns of qkv.
#include <string.h>

#include "core/ast.h"
#include "core/gemm.h"
#include "core/ops.h"

// x (n) *= s. The scale is applied to the rank-r side (z, dz: N x r) instead of
// as the GEMM's alpha: oneDNN 2.6 serves a float32 product with output scales
// from its older gemm:jit path, 2-3x slower than brgemm on these rank-r shapes.
// alpha / rr is a power of two for the presets, so the results are the same bits.
static void scale(float *x, float s, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void lora_forward(float *out, float *z, const float *u, const float *A, const float *B, float s,
                  int N, int C, int r, int OC, int ldo) {
    double t0 = prof_start();
    gemm(0, 1, N, r, C, 1.0f, u, C, A, C, 0.0f, z, r, NULL);
    scale(z, s, (size_t)N * r);
    gemm(0, 1, N, OC, r, 1.0f, z, r, B, r, 1.0f, out, ldo, NULL);
    prof_stop(PROF_GEMM, t0);
    petal_gemm_flops += 2.0 * N * r * (C + OC);
}

void lora_backward(float *du, float *dA, float *dB, float *dz, const float *dout, int ldo,
                   const float *u, const float *z, const float *A, const float *B, float s, int N,
                   int C, int r, int OC) {
    // z holds s u A^T. dB += dout^T z ; dz = s dout B ; dA += dz^T u ; du += dz A
    double t0 = prof_start();
    if (dB) gemm(1, 0, OC, r, N, 1.0f, dout, ldo, z, r, 1.0f, dB, r, NULL);
    gemm(0, 0, N, r, OC, 1.0f, dout, ldo, B, r, 0.0f, dz, r, NULL);
    scale(dz, s, (size_t)N * r);
    if (dA) gemm(1, 0, r, C, N, 1.0f, dz, r, u, C, 1.0f, dA, C, NULL);
    if (du) gemm(0, 0, N, C, r, 1.0f, dz, r, A, C, 1.0f, du, C, NULL);
    prof_stop(PROF_GEMM, t0);
    petal_gemm_flops += 2.0 * N * r * (OC * 2 + C * 2);
}

void ast_lora_merge(ast_model *m) {
    int C = m->cfg.C, r = m->method.lora.rank;
    for (int l = 0; l < m->cfg.L; l++) {
        ast_layer_tensors *w = &m->w.layer[l];
        for (int t = 0; t < 4; t++) {
            if (!w->lora_a[t]) continue;
            // q, k, v are (C, C) blocks of the fused qkv weight; o is its own.
            float *W = t < 3 ? w->qkv_w + (size_t)t * C * C : w->o_w;
            gemm(0, 0, C, C, r, m->lora_s,
                        w->lora_b[t], r, w->lora_a[t], C, 1.0f, W, C, NULL);
            memset(w->lora_b[t], 0, (size_t)C * r * sizeof(float));
        }
    }
}
