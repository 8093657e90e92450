// ==== GEMM engines: oneDNN matmul primitives (cached per shape) or OpenBLAS ====
#include "core/gemm.h"
#include "core/vmath.h"

#include <cblas.h>
#include <cpuid.h>
#include <dnnl.h>
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int engine = -1;
#define GEMM_NCHUNK 1536  // gemm_engine_id once selected
long gemm_primitives_created;

int gemm_select(const char *name, petal_err *err) {
    if (!name || !*name) name = getenv("PETAL_GEMM");
    if (!name || !*name || !strcmp(name, "onednn")) engine = GEMM_ONEDNN;
    else if (!strcmp(name, "openblas")) engine = GEMM_OPENBLAS;
    else
        return petal_fail(err, PETAL_EINPUT,
                          "unknown GEMM engine '%s' (PETAL_GEMM: onednn or openblas)", name);
    return PETAL_OK;
}

gemm_engine_id gemm_engine(void) {
    if (engine < 0) {
        petal_err err;
        if (gemm_select(NULL, &err)) engine = GEMM_ONEDNN;  // main() has reported the bad name
    }
    return (gemm_engine_id)engine;
}

const char *gemm_engine_name(void) {
    return gemm_engine() == GEMM_OPENBLAS ? "openblas" : "onednn";
}

// ---- bf16 ---------------------------------------------------------------------------

// One value: round to nearest even on the bits; NaNs stay NaNs (a quiet bit
// is set so truncation cannot turn one into an infinity); denormals become
// zeros of their sign, as the AVX512-BF16 instruction below does.
static inline bf16 bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (bf16)((u >> 16) & 0x8000u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40u);
    return (bf16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// 32 values per instruction (vcvtne2ps2bf16: the same rounding).
__attribute__((target("avx512f,avx512bf16"))) static void bf16_avx512(bf16 *dst, const float *src,
                                                                        size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh r = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512((void *)(dst + i), (__m512i)r);
    }
    for (; i < n; i++) dst[i] = bf16_round(src[i]);
}

static int has_avx512bf16(void) {
    static int have = -1;
    if (have < 0) {
        unsigned a, b, c, d;
        have = __builtin_cpu_supports("avx512f") && __get_cpuid_count(7, 1, &a, &b, &c, &d) &&
               ((a >> 5) & 1);
    }
    return have;
}

void bf16_from_f32(bf16 *dst, const float *src, size_t n) {
    int vec = has_avx512bf16();
    // Threads take whole blocks of 32 values.
#pragma omp parallel if (n > 65536)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        size_t nb = (n + 31) / 32, b0 = nb * t / nt, b1 = nb * (t + 1) / nt;
        size_t i0 = b0 * 32, i1 = b1 * 32 < n ? b1 * 32 : n;
        if (vec) bf16_avx512(dst + i0, src + i0, i1 > i0 ? i1 - i0 : 0);
        else
            for (size_t i = i0; i < i1; i++) dst[i] = bf16_round(src[i]);
    }
}

int gemm_bf16_supported(const char **what) {
    unsigned a, b, c, d;
    int avx512bf16 = 0, amx = 0;
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) avx512bf16 = (a >> 5) & 1;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) amx = (d >> 22) & 1;
    if (what) *what = amx ? "AMX-BF16" : avx512bf16 ? "AVX512-BF16" : "neither AVX512-BF16 nor AMX-BF16";
    return (avx512bf16 || amx) && __builtin_cpu_supports("avx512f");
}

// ---- oneDNN ---------------------------------------------------------------------------

// One cached matmul: its shape key, the primitive and memory objects whose
// data handles are pointed at the caller's buffers on every call.
typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, bias, bf16;
    float alpha, beta;
} gemm_key;

typedef struct {
    gemm_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst;
} gemm_entry;

// Shapes seen in a run: a few per layer kind (row chunks, the last, smaller
// batch of an epoch). Past the cap the cache starts over (never in practice).
#define GEMM_CACHE_MAX 512
static gemm_entry cache[GEMM_CACHE_MAX];
static int ncache;
static dnnl_engine_t dnn_eng;
static dnnl_stream_t dnn_stream;
static bf16 *a16;  // op(A) rounded to bf16, grown to the largest seen
static size_t a16_n;

int gemm_primitives_cached(void) { return ncache; }

#define DNN_CHECK(call)                                                                     \
    do {                                                                                    \
        dnnl_status_t s_ = (call);                                                          \
        if (s_ != dnnl_success) {                                                           \
            fprintf(stderr, "%s:%d: internal error: oneDNN %s returned %d\n", __FILE__, __LINE__, \
                    #call, (int)s_);                                                        \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

void gemm_release(void) {
    for (int i = 0; i < ncache; i++) {
        gemm_entry *e = &cache[i];
        dnnl_primitive_destroy(e->prim);
        dnnl_memory_destroy(e->src);
        dnnl_memory_destroy(e->wei);
        dnnl_memory_destroy(e->dst);
        if (e->bias) dnnl_memory_destroy(e->bias);
    }
    ncache = 0;
    free(a16);
    a16 = NULL, a16_n = 0;
    if (dnn_stream) dnnl_stream_destroy(dnn_stream);
    if (dnn_eng) dnnl_engine_destroy(dnn_eng);
    dnn_stream = NULL, dnn_eng = NULL;
}

static gemm_entry *dnn_lookup(const gemm_key *k) {
    for (int i = 0; i < ncache; i++)
        if (!memcmp(&cache[i].key, k, sizeof *k)) return &cache[i];
    if (!dnn_eng) {
        DNN_CHECK(dnnl_engine_create(&dnn_eng, dnnl_cpu, 0));
        DNN_CHECK(dnnl_stream_create(&dnn_stream, dnn_eng, dnnl_stream_default_flags));
    }
    if (ncache == GEMM_CACHE_MAX) {
        dnnl_engine_t e = dnn_eng;
        dnnl_stream_t s = dnn_stream;
        dnn_eng = NULL, dnn_stream = NULL;  // keep the engine across the purge
        gemm_release();
        dnn_eng = e, dnn_stream = s;
    }
    dnnl_data_type_t in = k->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a, b, c, bias;
    dnnl_dims_t da = {k->M, k->K}, db = {k->K, k->N}, dc = {k->M, k->N}, dbias = {1, k->N};
    dnnl_dims_t sa = {k->ta ? 1 : k->lda, k->ta ? k->lda : 1};
    dnnl_dims_t sb = {k->tb ? 1 : k->ldb, k->tb ? k->ldb : 1};
    dnnl_dims_t sc = {k->ldc, 1}, sbias = {k->N, 1};
    DNN_CHECK(dnnl_memory_desc_init_by_strides(&a, 2, da, in, sa));
    DNN_CHECK(dnnl_memory_desc_init_by_strides(&b, 2, db, in, sb));
    DNN_CHECK(dnnl_memory_desc_init_by_strides(&c, 2, dc, dnnl_f32, sc));
    DNN_CHECK(dnnl_memory_desc_init_by_strides(&bias, 2, dbias, dnnl_f32, sbias));
    dnnl_matmul_desc_t md;
    DNN_CHECK(dnnl_matmul_desc_init(&md, &a, &b, k->bias ? &bias : NULL, &c));
    dnnl_primitive_attr_t attr;
    DNN_CHECK(dnnl_primitive_attr_create(&attr));
    if (k->alpha != 1.0f) DNN_CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha));
    dnnl_post_ops_t po = NULL;
    if (k->beta != 0.0f) {  // C = alpha A B + beta C: a sum post-op reading dst
        DNN_CHECK(dnnl_post_ops_create(&po));
        DNN_CHECK(dnnl_post_ops_append_sum(po, k->beta));
        DNN_CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    dnnl_primitive_desc_t pd;
    DNN_CHECK(dnnl_primitive_desc_create(&pd, &md, attr, dnn_eng, NULL));
    gemm_entry *e = &cache[ncache];
    memset(e, 0, sizeof *e);
    e->key = *k;
    DNN_CHECK(dnnl_primitive_create(&e->prim, pd));
    DNN_CHECK(dnnl_memory_create(&e->src, &a, dnn_eng, DNNL_MEMORY_NONE));
    DNN_CHECK(dnnl_memory_create(&e->wei, &b, dnn_eng, DNNL_MEMORY_NONE));
    DNN_CHECK(dnnl_memory_create(&e->dst, &c, dnn_eng, DNNL_MEMORY_NONE));
    if (k->bias) DNN_CHECK(dnnl_memory_create(&e->bias, &bias, dnn_eng, DNNL_MEMORY_NONE));
    dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    ncache++;
    gemm_primitives_created++;
    return e;
}

static void dnn_run(const gemm_key *k, const void *A, const void *B, const float *bias, float *C) {
    gemm_entry *e = dnn_lookup(k);
    DNN_CHECK(dnnl_memory_set_data_handle(e->src, (void *)A));
    DNN_CHECK(dnnl_memory_set_data_handle(e->wei, (void *)B));
    DNN_CHECK(dnnl_memory_set_data_handle(e->dst, C));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei},
                               {DNNL_ARG_DST, e->dst}, {DNNL_ARG_BIAS, e->bias}};
    if (bias) DNN_CHECK(dnnl_memory_set_data_handle(e->bias, (void *)bias));
    DNN_CHECK(dnnl_primitive_execute(e->prim, dnn_stream, bias ? 4 : 3, args));
    DNN_CHECK(dnnl_stream_wait(dnn_stream));
}

// ---- the products ----------------------------------------------------------------------

static void blas_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc, const float *bias) {
    if (bias) {  // start from the bias rows; the product accumulates into them
#pragma omp parallel for schedule(static) if ((size_t)M * N > 65536)
        for (int m = 0; m < M; m++) memcpy(C + (size_t)m * ldc, bias, (size_t)N * sizeof *C);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---- sums over rows in fixed blocks ----------------------------------------------------

// C (M, N) = alpha A^T B + beta C with A (K, M), B (K, N): the weight
// gradients, summed over a batch's K = B T rows. oneDNN splits a long K over
// its threads when C is small next to it, so the order of the sum, and its
// last bits, followed the thread count (a LoRA trial on 1 and 2 threads
// differed by 1.5e-7; 768 x 768 over 9440 rows differed between 8 and 16
// threads). So K runs in blocks of ROWSUM_ROWS rows, one product each over all
// threads (no K that short is split, checked on 1-64 threads), accumulated
// into C in block order: the blocks depend on K alone, and so do the bits.
#define ROWSUM_ROWS 256

// The same sum with a single output row or column (a rank-1 LoRA's
// gradients): oneDNN runs these as matrix-vector products whose split of K
// even a 256-row block did not fix (1 and 2 threads differed, 3 did not). Here
// each output adds its K products in order, VL outputs to a vector.
static void rowsum_vector(int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                          int ldb, float beta, float *C, int ldc) {
    int n = M == 1 ? N : M;                    // outputs
    const float *v = M == 1 ? A : B;           // the K scalars, one per row
    const float *w = M == 1 ? B : A;           // the K rows of n outputs' factors
    int ldv = M == 1 ? lda : ldb, ldw = M == 1 ? ldb : lda;
    size_t ldo = M == 1 ? 1 : (size_t)ldc;     // output stride
#pragma omp parallel for schedule(static) if ((size_t)n * K > 65536)
    for (int j = 0; j < n; j += VL) {
        size_t len = n - j < VL ? (size_t)(n - j) : VL;
        vfloat acc = {0};
        for (int k = 0; k < K; k++)
            acc = vfma(vbcast(v[(size_t)k * ldv]), vload_part(w + (size_t)k * ldw + j, len), acc);
        float out[VL];
        vstore(out, acc);
        for (size_t i = 0; i < len; i++) {
            float *c = C + (j + i) * ldo;
            *c = beta == 0.0f ? alpha * out[i] : alpha * out[i] + beta * *c;
        }
    }
}

void gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc, const float *bias) {
    PETAL_ASSERT(!bias || (alpha == 1.0f && beta == 0.0f));
    if (ta && !tb && (M == 1 || N == 1) && !bias && M > 0 && N > 0 && K > 0) {
        rowsum_vector(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (ta && !tb && K > ROWSUM_ROWS && !bias) {  // a sum over rows, in blocks (above)
        for (int k0 = 0; k0 < K; k0 += ROWSUM_ROWS) {
            int kb = K - k0 < ROWSUM_ROWS ? K - k0 : ROWSUM_ROWS;
            gemm(1, 0, M, N, kb, alpha, A + (size_t)k0 * lda, lda, B + (size_t)k0 * ldb, ldb,
                 k0 ? 1.0f : beta, C, ldc, NULL);
        }
        return;
    }
    // Empty products (K = 0: C = beta C + bias) stay on OpenBLAS, which defines them.
    if (gemm_engine() == GEMM_OPENBLAS || M <= 0 || N <= 0 || K <= 0) {
        if (M > 0 && N > 0) blas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
        return;
    }
    // A row-major B wider than GEMM_NCHUNK columns runs in column blocks: oneDNN
    // 2.6's kernels on such a B reach half their speed otherwise (fc2's input
    // gradient, B = W (C, MLP): 60 -> 130 GFLOP/s per core, measured).
    int nc = !tb && N > GEMM_NCHUNK ? GEMM_NCHUNK : N;
    for (int j = 0; j < N; j += nc) {
        int w = N - j < nc ? N - j : nc;
        gemm_key k = {ta, tb, M, w, K, lda, ldb, ldc, bias != NULL, 0, alpha, beta};
        dnn_run(&k, A, B + j, bias ? bias + j : NULL, C + j);
    }
}

void gemm_bf16w(int ta, int tb, int M, int N, int K, const float *A, int lda, const bf16 *B,
                int ldb, float beta, float *C, int ldc, const float *bias) {
    PETAL_ASSERT(!bias || beta == 0.0f);
    PETAL_ASSERT(gemm_engine() == GEMM_ONEDNN && M > 0 && N > 0 && K > 0);
    // op(A) rounded into a packed copy (rows of its stored layout, no gaps).
    int rows = ta ? K : M, cols = ta ? M : K;
    size_t n = (size_t)rows * cols;
    if (n > a16_n) {
        free(a16);
        a16 = petal_malloc(n * sizeof *a16);
        a16_n = n;
    }
    if (lda == cols) {
        bf16_from_f32(a16, A, n);
    } else {
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int r = 0; r < rows; r++) bf16_from_f32(a16 + (size_t)r * cols, A + (size_t)r * lda, (size_t)cols);
    }
    gemm_key k = {ta, tb, M, N, K, cols, ldb, ldc, bias != NULL, 1, 1.0f, beta};
    dnn_run(&k, a16, B, bias, C);
}

// ---- the machine's limit ------------------------------------------------------------------

// n iterations of 12 independent vector FMAs on registers only (no loads):
// enough chains to cover the FMA latency on two ports.
static void fma_loop_avx512(long n) {
    __asm__ volatile(
        "vxorps %%xmm0, %%xmm0, %%xmm0\n\t"
        "vmovaps %%zmm0, %%zmm1\n\tvmovaps %%zmm0, %%zmm2\n\tvmovaps %%zmm0, %%zmm3\n\t"
        "vmovaps %%zmm0, %%zmm4\n\tvmovaps %%zmm0, %%zmm5\n\tvmovaps %%zmm0, %%zmm6\n\t"
        "vmovaps %%zmm0, %%zmm7\n\tvmovaps %%zmm0, %%zmm8\n\tvmovaps %%zmm0, %%zmm9\n\t"
        "vmovaps %%zmm0, %%zmm10\n\tvmovaps %%zmm0, %%zmm11\n\tvmovaps %%zmm0, %%zmm12\n\t"
        "vmovaps %%zmm0, %%zmm13\n\t"
        "1:\n\t"
        "vfmadd231ps %%zmm12, %%zmm13, %%zmm0\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm1\n\t"
        "vfmadd231ps %%zmm12, %%zmm13, %%zmm2\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm3\n\t"
        "vfmadd231ps %%zmm12, %%zmm13, %%zmm4\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm5\n\t"
        "vfmadd231ps %%zmm12, %%zmm13, %%zmm6\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm7\n\t"
        "vfmadd231ps %%zmm12, %%zmm13, %%zmm8\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm9\n\t"
        "vfmadd231ps %%zmm12, %%zmm13, %%zmm10\n\tvfmadd231ps %%zmm12, %%zmm13, %%zmm11\n\t"
        "dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "cc");
}

static void fma_loop_avx2(long n) {
    __asm__ volatile(
        "vxorps %%xmm0, %%xmm0, %%xmm0\n\t"
        "vmovaps %%ymm0, %%ymm1\n\tvmovaps %%ymm0, %%ymm2\n\tvmovaps %%ymm0, %%ymm3\n\t"
        "vmovaps %%ymm0, %%ymm4\n\tvmovaps %%ymm0, %%ymm5\n\tvmovaps %%ymm0, %%ymm6\n\t"
        "vmovaps %%ymm0, %%ymm7\n\tvmovaps %%ymm0, %%ymm8\n\tvmovaps %%ymm0, %%ymm9\n\t"
        "vmovaps %%ymm0, %%ymm10\n\tvmovaps %%ymm0, %%ymm11\n\tvmovaps %%ymm0, %%ymm12\n\t"
        "vmovaps %%ymm0, %%ymm13\n\t"
        "1:\n\t"
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm0\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm1\n\t"
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm2\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm3\n\t"
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm4\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm5\n\t"
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm6\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm7\n\t"
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm8\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm10\n\tvfmadd231ps %%ymm12, %%ymm13, %%ymm11\n\t"
        "dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "cc");
}

// Operands for the bf16 peak loops: ordinary numbers, not zeros (on zero
// tiles AMX ran ~20% faster here, 2650-2760 against 2180-2290 GFLOP/s on one
// core, a speed no GEMM of real data reaches). Each A pair is (x, -x) and each
// B pair (y, y), so every pair's products cancel exactly and the accumulators
// stay 0 (no overflow however long the loop). n values each.
static void cancelling_pairs(bf16 *a, bf16 *b, int n) {
    for (int i = 0; i < n; i += 2) a[i] = 0x3fb3, a[i + 1] = 0xbfb3, b[i] = b[i + 1] = 0x3f4d;
}

// n iterations of 12 independent bf16 dot products (vdpbf16ps: per float32
// lane, two bf16 products added to the accumulator, 4 FLOPs) on registers only.
static void dpbf16_loop_avx512(long n) {
    _Alignas(64) bf16 a[32], b[32];  // per thread: the loops run on every thread at once
    cancelling_pairs(a, b, 32);
    __asm__ volatile(
        "vxorps %%xmm0, %%xmm0, %%xmm0\n\t"
        "vmovaps %%zmm0, %%zmm1\n\tvmovaps %%zmm0, %%zmm2\n\tvmovaps %%zmm0, %%zmm3\n\t"
        "vmovaps %%zmm0, %%zmm4\n\tvmovaps %%zmm0, %%zmm5\n\tvmovaps %%zmm0, %%zmm6\n\t"
        "vmovaps %%zmm0, %%zmm7\n\tvmovaps %%zmm0, %%zmm8\n\tvmovaps %%zmm0, %%zmm9\n\t"
        "vmovaps %%zmm0, %%zmm10\n\tvmovaps %%zmm0, %%zmm11\n\t"
        "vmovdqu64 (%1), %%zmm12\n\tvmovdqu64 (%2), %%zmm13\n\t"
        "1:\n\t"
        "vdpbf16ps %%zmm12, %%zmm13, %%zmm0\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm1\n\t"
        "vdpbf16ps %%zmm12, %%zmm13, %%zmm2\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm3\n\t"
        "vdpbf16ps %%zmm12, %%zmm13, %%zmm4\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm5\n\t"
        "vdpbf16ps %%zmm12, %%zmm13, %%zmm6\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm7\n\t"
        "vdpbf16ps %%zmm12, %%zmm13, %%zmm8\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm9\n\t"
        "vdpbf16ps %%zmm12, %%zmm13, %%zmm10\n\tvdpbf16ps %%zmm12, %%zmm13, %%zmm11\n\t"
        "dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
        : "+r"(n)
        : "r"(a), "r"(b)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "cc", "memory");
}

// AMX: 8 tiles of 16 rows x 64 bytes (palette 1). Each tdpbf16ps multiplies a
// 16 x 32 bf16 tile by a 32 x 16 one into a 16 x 16 float32 tile: 16384 FLOPs.
// Four accumulators (tmm0-3) over two A tiles (tmm4, 5) and two B tiles (tmm6,
// 7), the 2 x 2 block a GEMM kernel runs; each iteration is 4 products.
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tilecfg;

static void amx_loop(long n) {
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _Alignas(64) bf16 a[512], b[512];  // one 16 x 64-byte tile each, per thread
    cancelling_pairs(a, b, 512);
    long stride = 64;
    // GNU as accepts the AMX mnemonics whatever -march says; only CPUs with
    // AMX (checked by the caller) run this.
    __asm__ volatile(
        "ldtilecfg %1\n\t"
        "tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3\n\t"
        "tileloadd (%2,%4,1), %%tmm4\n\ttileloadd (%2,%4,1), %%tmm5\n\t"
        "tileloadd (%3,%4,1), %%tmm6\n\ttileloadd (%3,%4,1), %%tmm7\n\t"
        "1:\n\t"
        "tdpbf16ps %%tmm6, %%tmm4, %%tmm0\n\ttdpbf16ps %%tmm7, %%tmm4, %%tmm1\n\t"
        "tdpbf16ps %%tmm6, %%tmm5, %%tmm2\n\ttdpbf16ps %%tmm7, %%tmm5, %%tmm3\n\t"
        "dec %0\n\tjnz 1b\n\t"
        "tilerelease\n\t"
        : "+r"(n)
        : "m"(cfg), "r"(a), "r"(b), "r"(stride)
        : "cc", "memory");
}

// Linux keeps AMX tile data off until the process asks for it (once per process).
static int amx_usable(void) {
    static int ok = -1;
    if (ok >= 0) return ok;
    unsigned a, b, c, d;
    ok = __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((d >> 24) & 1) && ((d >> 22) & 1);
#ifdef SYS_arch_prctl
    if (ok) ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                         18 /* XFEATURE_XTILEDATA */) == 0;
#else
    ok = 0;
#endif
    return ok;
}

static double thread_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Windows per thread and how long each runs (iterations sized from a first
// short window). Every thread times its windows by its own CPU clock, so time
// it spent descheduled (another process on its core) does not count, and keeps
// its best window; the threads' bests add up to the machine's figure. Short
// windows, many of them: a window with a clock-frequency dip or a stolen slice
// loses, one clean window is enough.
#define PEAK_WINDOWS 12
#define PEAK_WINDOW_S 0.02

// GFLOP/s of loop f (flops per iteration) on the current OpenMP threads.
static double peak_of(void (*f)(long), double flops) {
    double sum = 0.0;
#pragma omp parallel reduction(+ : sum)
    {
        long n = 1000;
        double dt = 0.0;
        while (dt < 0.002 && n < (1L << 40)) {  // warm-up and sizing: the units wake, the clock settles
            n *= 2;
            double t0 = thread_cpu_now();
            f(n);
            dt = thread_cpu_now() - t0;
        }
        n = (long)(n * (PEAK_WINDOW_S / dt)) + 1;
        double best = 0.0;
        for (int w = 0; w < PEAK_WINDOWS; w++) {
            double t0 = thread_cpu_now();
            f(n);
            double g = flops * n / (thread_cpu_now() - t0) * 1e-9;
            best = g > best ? g : best;
        }
        sum += best;
    }
    return sum;
}

double gemm_fma_peak(const char **isa) {
    int wide = __builtin_cpu_supports("avx512f");
    if (isa) *isa = wide ? "avx512" : "avx2";
    if (!wide && !__builtin_cpu_supports("fma")) return 0.0;
    return wide ? peak_of(fma_loop_avx512, 12.0 * 16 * 2) : peak_of(fma_loop_avx2, 12.0 * 8 * 2);
}

double gemm_bf16_peak(const char **isa) {
    if (amx_usable()) {
        if (isa) *isa = "amx-bf16";
        return peak_of(amx_loop, 4.0 * 16 * 16 * 32 * 2);
    }
    if (has_avx512bf16()) {
        if (isa) *isa = "avx512-bf16";
        return peak_of(dpbf16_loop_avx512, 12.0 * 16 * 4);
    }
    if (isa) *isa = "none";
    return 0.0;
}
