// ==== Multi-head softmax self-attention ========================================
// Per (batch, head): S = Q K^T / sqrt(HS), P = softmax(S) row-wise, Y = P V.
// Q, K, V are strided views into qkv (row stride 3C), so no head transposes
// are materialised; each product is one sgemm on the views.
#include <cblas.h>
#include <math.h>

#include "core/ops.h"

static void softmax_rows(float *p, int rows, int cols) {
    for (int i = 0; i < rows; i++) {
        float *r = p + (size_t)i * cols;
        float mx = r[0];
        for (int j = 1; j < cols; j++) mx = r[j] > mx ? r[j] : mx;
        float s = 0.0f;
        for (int j = 0; j < cols; j++) {
            r[j] = expf(r[j] - mx);
            s += r[j];
        }
        float inv = 1.0f / s;
        for (int j = 0; j < cols; j++) r[j] *= inv;
    }
}

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + h * HS;
            const float *k = q + C, *v = q + 2 * C;
            float *p = att + ((size_t)b * NH + h) * T * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, q, C3, k, C3,
                        0.0f, p, T);
            softmax_rows(p, T, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, p, T, v, C3,
                        0.0f, out + (size_t)b * T * C + h * HS, C);
        }
    }
    petal_gemm_flops += 4.0 * B * NH * (double)T * T * HS;
}

void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH) {
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + h * HS;
            const float *k = q + C, *v = q + 2 * C;
            const float *p = att + ((size_t)b * NH + h) * T * T;
            const float *dy = dout + (size_t)b * T * C + h * HS;
            float *dq = dqkv + (size_t)b * T * C3 + h * HS;
            float *dk = dq + C, *dv = dq + 2 * C;
            float *dp = scratch;  // (T, T): dP, then dS in place
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, dy, C, v, C3,
                        0.0f, dp, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, p, T, dy, C,
                        0.0f, dv, C3);
            // Softmax backward: dS = P * (dP - rowsum(P * dP)).
            for (int i = 0; i < T; i++) {
                const float *pr = p + (size_t)i * T;
                float *dr = dp + (size_t)i * T;
                float dot = 0.0f;
                for (int j = 0; j < T; j++) dot += pr[j] * dr[j];
                for (int j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - dot);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, scale, dp, T, k, C3,
                        0.0f, dq, C3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, scale, dp, T, q, C3,
                        0.0f, dk, C3);
        }
    }
    petal_gemm_flops += 8.0 * B * NH * (double)T * T * HS;
}
