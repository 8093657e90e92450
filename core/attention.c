// ==== Multi-head softmax self-attention ========================================
// Per (batch, head): S = Q K^T / sqrt(HS), P = softmax(S) row-wise, Y = P V.
// Q, K, V are strided views (into qkv, or into the prefix-extended key/value
// buffer), so no head transposes are materialised; each product is one sgemm.
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

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int ldq, int ldkv, int B, int T, int Tk, int C, int NH) {
    int HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *qb = q + (size_t)b * T * ldq + h * HS;
            const float *kb = k + (size_t)b * Tk * ldkv + h * HS;
            const float *vb = v + (size_t)b * Tk * ldkv + h * HS;
            float *p = att + ((size_t)b * NH + h) * T * Tk;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, Tk, HS, scale, qb, ldq, kb,
                        ldkv, 0.0f, p, Tk);
            softmax_rows(p, T, Tk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, Tk, 1.0f, p, Tk, vb, ldkv,
                        0.0f, out + (size_t)b * T * C + h * HS, C);
        }
    }
    petal_gemm_flops += 4.0 * B * NH * (double)T * Tk * HS;
}

void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *q, const float *k, const float *v, const float *att, int ldq,
                        int ldkv, int B, int T, int Tk, int C, int NH) {
    int HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            size_t oq = (size_t)b * T * ldq + h * HS, okv = (size_t)b * Tk * ldkv + h * HS;
            const float *p = att + ((size_t)b * NH + h) * T * Tk;
            const float *dy = dout + (size_t)b * T * C + h * HS;
            float *dp = scratch;  // (T, Tk): dP, then dS in place
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, Tk, HS, 1.0f, dy, C, v + okv,
                        ldkv, 0.0f, dp, Tk);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, HS, T, 1.0f, p, Tk, dy, C,
                        0.0f, dv + okv, ldkv);
            // Softmax backward: dS = P * (dP - rowsum(P * dP)).
            for (int i = 0; i < T; i++) {
                const float *pr = p + (size_t)i * Tk;
                float *dr = dp + (size_t)i * Tk;
                float dot = 0.0f;
                for (int j = 0; j < Tk; j++) dot += pr[j] * dr[j];
                for (int j = 0; j < Tk; j++) dr[j] = pr[j] * (dr[j] - dot);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, Tk, scale, dp, Tk,
                        k + okv, ldkv, 0.0f, dq + oq, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, HS, T, scale, dp, Tk, q + oq,
                        ldq, 0.0f, dk + okv, ldkv);
        }
    }
    petal_gemm_flops += 8.0 * B * NH * (double)T * Tk * HS;
}
