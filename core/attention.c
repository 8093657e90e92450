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
//
// With AVX-512 and a head size that is a multiple of 16, the six products
// (S, P V, dP, dV, dQ, dK) run on the small kernels below instead of sgemm:
// the CPU's 512-bit FMAs do twice the work per cycle of the AVX2 kernels
// OpenBLAS uses here, and the kernels read Q, K, V, P in place (only K^T and
// V^T are transposed once per (b, h)), where sgemm packs both operands on
// every call of these 64-deep products. Otherwise the cblas path runs.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#define ATT_SIMD 1
#endif

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

// Keys padded to whole vectors: the score rows and transposed K, V use this stride.
static int pad16(int n) { return (n + 15) / 16 * 16; }

size_t attention_scratch_floats(int T, int Tk, int HS) {
    // S and dP blocks (QB, Tkp), K^T and V^T (HS, Tkp), 1 / row sums (QB)
    int QB = query_block(T, Tk);
    return 2 * ((size_t)QB + (size_t)HS) * pad16(Tk) + (size_t)QB;
}

#ifdef ATT_SIMD
// ---- AVX-512 kernels ---------------------------------------------------------
// C (M, 16 NV) = alpha * A B (+ C when acc), A(i, k) = a[i sa + k sk] (row-major
// A: sa = lda, sk = 1; A transposed: sa = 1, sk = lda), B (K, 16 NV) rows of
// stride ldb. One tile: MR rows x NV vectors of accumulators, K rank-1 steps.
#define ATT_MR 6
static inline __attribute__((always_inline)) void mm_tile(const int mr, const int nv, float *c,
                                                          int ldc, const float *a, long sa,
                                                          long sk, const float *b, int ldb, int K,
                                                          float alpha, int acc) {
    __m512 s[ATT_MR][4];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) s[r][v] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 bv[4];
        for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(b + (size_t)k * ldb + 16 * v);
        for (int r = 0; r < mr; r++) {
            __m512 ar = _mm512_set1_ps(a[r * sa + k * sk]);
            for (int v = 0; v < nv; v++) s[r][v] = _mm512_fmadd_ps(ar, bv[v], s[r][v]);
        }
    }
    __m512 al = _mm512_set1_ps(alpha);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            float *p = c + (size_t)r * ldc + 16 * v;
            __m512 x = _mm512_mul_ps(al, s[r][v]);
            if (acc) x = _mm512_add_ps(x, _mm512_loadu_ps(p));
            _mm512_storeu_ps(p, x);
        }
}

#define MM_TILE(mr)                                                                         \
    switch (nv) {                                                                          \
    case 4: mm_tile(mr, 4, cc, ldc, aa, sa, sk, bb, ldb, K, alpha, acc); break;            \
    case 3: mm_tile(mr, 3, cc, ldc, aa, sa, sk, bb, ldb, K, alpha, acc); break;            \
    case 2: mm_tile(mr, 2, cc, ldc, aa, sa, sk, bb, ldb, K, alpha, acc); break;            \
    default: mm_tile(mr, 1, cc, ldc, aa, sa, sk, bb, ldb, K, alpha, acc); break;           \
    }

static void mm(float *c, int ldc, const float *a, long sa, long sk, const float *b, int ldb,
               int M, int NV, int K, float alpha, int acc) {
    for (int n0 = 0; n0 < NV; n0 += 4) {  // B's 4-vector column block stays in L1 over all rows
        int nv = NV - n0 < 4 ? NV - n0 : 4;
        const float *bb = b + 16 * n0;
        int m0 = 0;
        for (; m0 + ATT_MR <= M; m0 += ATT_MR) {
            float *cc = c + (size_t)m0 * ldc + 16 * n0;
            const float *aa = a + m0 * sa;
            MM_TILE(ATT_MR)
        }
        for (; m0 < M; m0++) {
            float *cc = c + (size_t)m0 * ldc + 16 * n0;
            const float *aa = a + m0 * sa;
            MM_TILE(1)
        }
    }
}

// dst (cols, ldd) = src^T for src (rows, cols) of row stride lds; cols % 16 == 0.
// 16 x 16 blocks through registers (unpack / shuffle), rows past the last
// whole block one by one.
static void transpose(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    int r0 = 0;
    for (; r0 + 16 <= rows; r0 += 16)
        for (int c0 = 0; c0 < cols; c0 += 16) {
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (size_t)(r0 + i) * lds + c0);
            for (int i = 0; i < 8; i++) {
                t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            for (int i = 0; i < 4; i++) {
                r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
                r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
                r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
                r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
            }
            for (int i = 0; i < 4; i++) {
                t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
                t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
                t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
                t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
            }
            for (int i = 0; i < 8; i++) {
                r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
                r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
            }
            for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + (size_t)(c0 + i) * ldd + r0, r[i]);
        }
    for (; r0 < rows; r0++)
        for (int c = 0; c < cols; c++) dst[(size_t)c * ldd + r0] = src[(size_t)r0 * lds + c];
}

// xt (HS, Tkp) = [x_tok; x_pfx]^T for one (b, h): token rows, then prefix
// rows, then zero columns up to the padding.
static void transpose_keys(float *xt, int ldt, const float *tok, int ldkv, const float *pfx,
                           int C, int T, int PK, int HS) {
    transpose(xt, ldt, tok, ldkv, T, HS);
    if (PK) transpose(xt + T, ldt, pfx, C, PK, HS);
    for (int c = 0; c < HS; c++)
        memset(xt + (size_t)c * ldt + T + PK, 0, (size_t)(ldt - T - PK) * sizeof *xt);
}
#endif

// Row-wise exp(s - max) of s (rows x n, ld) in place, unnormalised: the
// caller scales the P V rows by inv[i] = 1 / sum (HS values per row instead
// of Tk); lse[i] = max + log(sum) when lse is non-NULL.
static void softmax_rows(float *s, float *inv, float *lse, int rows, int n, int ld) {
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
        float tot = vhsum(sum);
        inv[i] = 1.0f / tot;
        if (lse) lse[i] = m + logf(tot);
    }
}

// y (rows, HS) of row stride ld: row i *= inv[i].
static void scale_rows(float *y, int ld, const float *inv, int rows, int HS) {
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < HS; c++) y[(size_t)i * ld + c] *= inv[i];
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
    size_t per = attention_scratch_floats(T, Tk, HS);
    double t0 = prof_start();
    // never more threads than the caller allows now (the scratch holds nthr)
    nthr = nthr < omp_get_max_threads() ? nthr : omp_get_max_threads();
#ifdef ATT_SIMD
    if (HS % 16 == 0) {
        int ldt = pad16(Tk), HV = HS / 16;
#pragma omp parallel for schedule(static) num_threads(nthr)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            float *s = scratch + (size_t)omp_get_thread_num() * per;  // (QB, ldt) scores
            float *kt = s + 2 * (size_t)QB * ldt;                      // (HS, ldt) K^T
            float *inv = kt + (size_t)HS * ldt;                        // (QB) 1 / row sums
            size_t okv = (size_t)b * T * ldkv + h * HS;
            transpose_keys(kt, ldt, k + okv, ldkv, PK ? pk + h * HS : NULL, C, T, PK, HS);
            for (int i0 = 0; i0 < T; i0 += QB) {
                int qb = T - i0 < QB ? T - i0 : QB;
                const float *qi = q + ((size_t)b * T + i0) * ldq + h * HS;
                float *oi = out + ((size_t)b * T + i0) * C + h * HS;
                mm(s, ldt, qi, ldq, 1, kt, ldt, qb, ldt / 16, HS, scale, 0);
                float *lsei = lse ? lse + ((size_t)b * NH + h) * T + i0 : NULL;
                softmax_rows(s, inv, lsei, qb, Tk, ldt);
                mm(oi, C, s, ldt, 1, v + okv, ldkv, qb, HV, T, 1.0f, 0);
                if (PK) mm(oi, C, s + T, ldt, 1, pv + h * HS, C, qb, HV, PK, 1.0f, 1);
                scale_rows(oi, C, inv, qb, HS);
            }
        }
        prof_stop(PROF_ATTENTION, t0);
        petal_gemm_flops += 4.0 * B * NH * (double)T * Tk * HS;
        return;
    }
#endif
#pragma omp parallel for schedule(static) num_threads(nthr)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        float *s = scratch + (size_t)omp_get_thread_num() * per;  // (QB, Tk)
        float *inv = s + 2 * (size_t)QB * Tk;                      // (QB) 1 / row sums
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
            softmax_rows(s, inv, lse ? lse + ((size_t)b * NH + h) * T + i0 : NULL, qb, Tk, Tk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qb, HS, T, 1.0f, s, Tk, vb, ldkv,
                        0.0f, oi, C);
            if (PK)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qb, HS, PK, 1.0f, s + T, Tk,
                            pv + h * HS, C, 1.0f, oi, C);
            scale_rows(oi, C, inv, qb, HS);
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
    size_t per = attention_scratch_floats(T, Tk, HS);
    double t0 = prof_start();
    // never more threads than the caller allows now (the scratch holds nthr)
    nthr = nthr < omp_get_max_threads() ? nthr : omp_get_max_threads();
#ifdef ATT_SIMD
    if (HS % 16 == 0) {
        int ldt = pad16(Tk), HV = HS / 16;
#pragma omp parallel for schedule(static) num_threads(nthr)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            float *p = scratch + (size_t)omp_get_thread_num() * per;  // (QB, ldt) probabilities
            float *dp = p + (size_t)QB * ldt;                          // (QB, ldt) dP, then dS
            float *kt = dp + (size_t)QB * ldt, *vt = kt + (size_t)HS * ldt;  // (HS, ldt) K^T, V^T
            size_t okv = (size_t)b * T * ldkv + h * HS;
            const float *kb = k + okv, *vb = v + okv;
            const float *pkh = PK ? pk + h * HS : NULL, *pvh = PK ? pv + h * HS : NULL;
            float *dkb = dk + okv, *dvb = dv + okv;
            float *dpkb = PK ? dpk + (size_t)b * PK * C + h * HS : NULL;
            float *dpvb = PK ? dpv + (size_t)b * PK * C + h * HS : NULL;
            transpose_keys(kt, ldt, kb, ldkv, pkh, C, T, PK, HS);
            transpose_keys(vt, ldt, vb, ldkv, pvh, C, T, PK, HS);
            for (int i0 = 0; i0 < T; i0 += QB) {
                int qb = T - i0 < QB ? T - i0 : QB, acc = i0 > 0;  // dK, dV sum over blocks
                const float *qi = q + ((size_t)b * T + i0) * ldq + h * HS;
                const float *doi = dout + ((size_t)b * T + i0) * C + h * HS;
                float *dqi = dq + ((size_t)b * T + i0) * ldq + h * HS;
                // P again from the kept log-sum-exp; dP = dO V^T
                mm(p, ldt, qi, ldq, 1, kt, ldt, qb, ldt / 16, HS, scale, 0);
                exp_rows(p, lse + ((size_t)b * NH + h) * T + i0, qb, Tk, ldt);
                mm(dp, ldt, doi, C, 1, vt, ldt, qb, ldt / 16, HS, 1.0f, 0);
                // dV += P^T dO
                mm(dvb, ldkv, p, 1, ldt, doi, C, T, HV, qb, 1.0f, acc);
                if (PK) mm(dpvb, C, p + T, 1, ldt, doi, C, PK, HV, qb, 1.0f, acc);
                softmax_backward_rows(dp, p, qb, Tk, ldt);
                // dQ = dS K scale; dK += dS^T Q scale
                mm(dqi, ldq, dp, ldt, 1, kb, ldkv, qb, HV, T, scale, 0);
                if (PK) mm(dqi, ldq, dp + T, ldt, 1, pkh, C, qb, HV, PK, scale, 1);
                mm(dkb, ldkv, dp, 1, ldt, qi, ldq, T, HV, qb, scale, acc);
                if (PK) mm(dpkb, C, dp + T, 1, ldt, qi, ldq, PK, HV, qb, scale, acc);
            }
        }
        prof_stop(PROF_ATTENTION, t0);
        petal_gemm_flops += 8.0 * B * NH * (double)T * Tk * HS;
        petal_recompute_flops += 2.0 * B * NH * (double)T * Tk * HS;
        return;
    }
#endif
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
