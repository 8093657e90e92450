// ==== Multi-head softmax self-attention, flash-style ============================
// Per (batch, head): S = Q K^T / sqrt(HS), P = softmax(S) row-wise, Y = P V.
// The (T, Tk) probabilities are never kept: the forward keeps one log-sum-exp
// per query row, and the backward recomputes P = exp(S - lse) block by block.
// Work is split over (b, h) pairs across OpenMP threads; inside the parallel
// region OpenBLAS (its OpenMP build) runs each small sgemm on the calling
// thread. Queries go in blocks of QB rows so a block's S and dP (QB x Tk)
// stay in the core's L2 cache; every block holds whole key rows, so the
// softmax needs no online rescaling and the memory is O(QB Tk) per thread.
// Q, K, V are strided views into qkv, so no head transposes are materialised.
// Prefix keys/values (prefix tuning) join as extra key columns: softmax does
// not care about key order, so S = [Q K^T | Q Pk^T] and Y = P_tok V + P_pfx Pv.
#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "core/ops.h"
#include "core/vmath.h"

double petal_recompute_flops;
int attention_block_rows;

// Query rows per block: the S and dP blocks (2 x QB x Tk floats) take 512 KiB,
// half of a core's L2; past ~100 rows OpenBLAS gains nothing from larger blocks.
static int query_block(int T, int Tk) {
    int qb = attention_block_rows > 0 ? attention_block_rows : 65536 / Tk;
    if (attention_block_rows <= 0 && qb < 16) qb = 16;
    return qb > T ? T : qb;
}

size_t attention_scratch_floats(int T, int Tk) { return 2 * (size_t)query_block(T, Tk) * Tk; }

// Row-wise softmax of s (rows x n, ld) in place; lse[i] = max + log(sum).
static void softmax_rows(float *s, float *lse, int rows, int n, int ld) {
    for (int i = 0; i < rows; i++) {
        float *r = s + (size_t)i * ld;
        vfloat mx = vbcast(-INFINITY);
        int j = 0;
        for (; j + VL <= n; j += VL) mx = vmax(mx, vload(r + j));
        float m = vhmax(mx);
        for (; j < n; j++) m = r[j] > m ? r[j] : m;
        vfloat sum = {0};
        for (j = 0; j + VL <= n; j += VL) {
            vfloat e = vexp(vload(r + j) - m);
            vstore(r + j, e);
            sum += e;
        }
        if (j < n) {
            vfloat e = vexp(vload_part(r + j, (size_t)(n - j)) - m);
            vstore_part(r + j, e, (size_t)(n - j));
            sum += vselect(vlanes_below(n - j), e, vbcast(0.0f));
        }
        float tot = vhsum(sum), inv = 1.0f / tot;
        for (j = 0; j + VL <= n; j += VL) vstore(r + j, vload(r + j) * inv);
        if (j < n) vstore_part(r + j, vload_part(r + j, (size_t)(n - j)) * inv, (size_t)(n - j));
        if (lse) lse[i] = m + logf(tot);
    }
}

// P = exp(S - lse) row-wise in place (the forward's probabilities again).
static void exp_rows(float *s, const float *lse, int rows, int n, int ld) {
    for (int i = 0; i < rows; i++) {
        float *r = s + (size_t)i * ld, l = lse[i];
        int j = 0;
        for (; j + VL <= n; j += VL) vstore(r + j, vexp(vload(r + j) - l));
        if (j < n) vstore_part(r + j, vexp(vload_part(r + j, (size_t)(n - j)) - l), (size_t)(n - j));
    }
}

// dS = P * (dP - rowsum(P * dP)) in place of dP.
static void softmax_backward_rows(float *dp, const float *p, int rows, int n, int ld) {
    for (int i = 0; i < rows; i++) {
        const float *pr = p + (size_t)i * ld;
        float *dr = dp + (size_t)i * ld;
        vfloat acc = {0};
        int j = 0;
        for (; j + VL <= n; j += VL) acc += vload(pr + j) * vload(dr + j);
        if (j < n) acc += vload_part(pr + j, (size_t)(n - j)) * vload_part(dr + j, (size_t)(n - j));
        float dot = vhsum(acc);
        for (j = 0; j + VL <= n; j += VL) vstore(dr + j, vload(pr + j) * (vload(dr + j) - dot));
        if (j < n) {
            size_t len = (size_t)(n - j);
            vstore_part(dr + j, vload_part(pr + j, len) * (vload_part(dr + j, len) - dot), len);
        }
    }
}

void attention_forward(float *out, float *lse, float *scratch, int nthr, const float *q,
                       const float *k, const float *v, const float *pk, const float *pv, int ldq,
                       int ldkv, int PK, int B, int T, int C, int NH) {
    int HS = C / NH, Tk = T + PK, QB = query_block(T, Tk);
    float scale = 1.0f / sqrtf((float)HS);
    size_t per = attention_scratch_floats(T, Tk);
    double t0 = prof_start();
#pragma omp parallel for schedule(static) num_threads(nthr)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        float *s = scratch + (size_t)omp_get_thread_num() * per;  // (QB, Tk)
        const float *kb = k + (size_t)b * T * ldkv + h * HS, *vb = v + (size_t)b * T * ldkv + h * HS;
        for (int i0 = 0; i0 < T; i0 += QB) {
            int qb = T - i0 < QB ? T - i0 : QB;
            const float *qi = q + ((size_t)b * T + i0) * ldq + h * HS;
            float *oi = out + ((size_t)b * T + i0) * C + h * HS;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, T, HS, scale, qi, ldq, kb, ldkv,
                        0.0f, s, Tk);
            if (PK)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, PK, HS, scale, qi, ldq,
                            pk + h * HS, C, 0.0f, s + T, Tk);
            softmax_rows(s, lse ? lse + ((size_t)b * NH + h) * T + i0 : NULL, qb, Tk, Tk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qb, HS, T, 1.0f, s, Tk, vb, ldkv,
                        0.0f, oi, C);
            if (PK)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qb, HS, PK, 1.0f, s + T, Tk,
                            pv + h * HS, C, 1.0f, oi, C);
        }
    }
    prof_stop(PROF_ATTENTION, t0);
    petal_gemm_flops += 4.0 * B * NH * (double)T * Tk * HS;
}

void attention_backward(float *dq, float *dk, float *dv, float *dpk, float *dpv, float *scratch,
                        int nthr, const float *dout, const float *q, const float *k,
                        const float *v, const float *pk, const float *pv, const float *lse,
                        int ldq, int ldkv, int PK, int B, int T, int C, int NH) {
    int HS = C / NH, Tk = T + PK, QB = query_block(T, Tk);
    float scale = 1.0f / sqrtf((float)HS);
    size_t per = attention_scratch_floats(T, Tk);
    double t0 = prof_start();
#pragma omp parallel for schedule(static) num_threads(nthr)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        float *p = scratch + (size_t)omp_get_thread_num() * per;  // (QB, Tk) probabilities
        float *dp = p + (size_t)QB * Tk;                           // (QB, Tk) dP, then dS
        size_t okv = (size_t)b * T * ldkv + h * HS;
        const float *kb = k + okv, *vb = v + okv;
        float *dkb = dk + okv, *dvb = dv + okv;
        float *dpkb = PK ? dpk + (size_t)b * PK * C + h * HS : NULL;
        float *dpvb = PK ? dpv + (size_t)b * PK * C + h * HS : NULL;
        for (int i0 = 0; i0 < T; i0 += QB) {
            int qb = T - i0 < QB ? T - i0 : QB;
            float beta = i0 ? 1.0f : 0.0f;  // dK, dV accumulate over query blocks
            const float *qi = q + ((size_t)b * T + i0) * ldq + h * HS;
            const float *doi = dout + ((size_t)b * T + i0) * C + h * HS;
            float *dqi = dq + ((size_t)b * T + i0) * ldq + h * HS;
            // recompute P from the kept log-sum-exp
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, T, HS, scale, qi, ldq, kb, ldkv,
                        0.0f, p, Tk);
            if (PK)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, PK, HS, scale, qi, ldq,
                            pk + h * HS, C, 0.0f, p + T, Tk);
            exp_rows(p, lse + ((size_t)b * NH + h) * T + i0, qb, Tk, Tk);
            // dP = dO V^T; dV += P^T dO
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, T, HS, 1.0f, doi, C, vb, ldkv,
                        0.0f, dp, Tk);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, qb, 1.0f, p, Tk, doi, C,
                        beta, dvb, ldkv);
            if (PK) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, PK, HS, 1.0f, doi, C,
                            pv + h * HS, C, 0.0f, dp + T, Tk);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, PK, HS, qb, 1.0f, p + T, Tk,
                            doi, C, beta, dpvb, C);
            }
            softmax_backward_rows(dp, p, qb, Tk, Tk);
            // dQ = dS K scale; dK += dS^T Q scale
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qb, HS, T, scale, dp, Tk, kb,
                        ldkv, 0.0f, dqi, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, qb, scale, dp, Tk, qi, ldq,
                        beta, dkb, ldkv);
            if (PK) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qb, HS, PK, scale, dp + T,
                            Tk, pk + h * HS, C, 1.0f, dqi, ldq);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, PK, HS, qb, scale, dp + T, Tk,
                            qi, ldq, beta, dpkb, C);
            }
        }
    }
    prof_stop(PROF_ATTENTION, t0);
    petal_gemm_flops += 8.0 * B * NH * (double)T * Tk * HS;
    petal_recompute_flops += 2.0 * B * NH * (double)T * Tk * HS;
}
