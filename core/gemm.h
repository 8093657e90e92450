// GEMM engines: every large float32 product of the core (linear layers, LoRA,
// mixtures, patch embedding) runs through gemm() here, on one of two engines:
//   onednn    oneDNN matmul primitives (default): the CPU's widest kernels,
//             chosen at run time (AVX-512, AMX), one primitive per shape,
//             created on first use and cached for the life of the process
//   openblas  OpenBLAS sgemm, the reference engine (PETAL_GEMM=openblas)
// Both run on the one OpenMP thread pool (oneDNN's OpenMP runtime uses
// omp_get_max_threads(), as petal's own loops do), so petal_set_threads sets
// both. gemm() and gemm_bf16w() are called from one thread at a time (the
// primitive cache and the bf16 scratch are process-wide, not locked); each
// product is threaded inside. bf16 products (a frozen backbone held in bf16,
// model.dtype bf16) run on oneDNN only, with float32 accumulation.
#ifndef PETAL_GEMM_H
#define PETAL_GEMM_H
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

typedef enum { GEMM_ONEDNN = 0, GEMM_OPENBLAS = 1 } gemm_engine_id;

// Selects the engine by name ("onednn", "openblas"); NULL or "" reads
// PETAL_GEMM (unset: onednn). PETAL_EINPUT names an unknown engine.
int gemm_select(const char *name, petal_err *err);
gemm_engine_id gemm_engine(void);
const char *gemm_engine_name(void);

// C (M, N; row stride ldc) = alpha op(A) op(B) + beta C [+ bias (N) on every
// row], row-major; op(A) (M, K) is A (M, K; lda) or, with ta, A^T of A (K, M;
// lda); op(B) (K, N) likewise with tb. beta 0 overwrites C (never read), 1
// accumulates. With bias, alpha must be 1 (it is the exact "acc + bias").
// A sum over rows (ta and not tb: weight gradients, K = the batch's rows) gives
// the same bits on any thread count (core/gemm.c: fixed row blocks).
void gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc, const float *bias);

// bfloat16 storage: the upper 16 bits of a float32, rounded to nearest even.
typedef uint16_t bf16;
// dst (n) = src rounded to bf16, threaded.
void bf16_from_f32(bf16 *dst, const float *src, size_t n);
static inline float bf16_to_f32(bf16 v) {
    union { uint32_t u; float f; } x = {.u = (uint32_t)v << 16};
    return x.f;
}
// Whether the CPU has native bf16 dot products (AVX512-BF16 or AMX-BF16);
// *what names what it has (for messages).
int gemm_bf16_supported(const char **what);
// The same product with B in bf16: op(A) is rounded to bf16 on the way in
// (A stays float32 in memory), products accumulate in float32 into C (float32).
// oneDNN only: the caller has checked gemm_bf16_supported and the engine.
void gemm_bf16w(int ta, int tb, int M, int N, int K, const float *A, int lda, const bf16 *B,
                int ldb, float beta, float *C, int ldc, const float *bias);

// The CPU's float32 FMA peak in GFLOP/s on the current OpenMP threads: a
// register-only loop of independent FMAs, AVX-512 (or AVX2 where that is all;
// *isa says which). Each thread keeps its best of 12 windows of ~20 ms timed
// by its own CPU clock (robust to other processes taking the core); the
// threads' figures add up.
double gemm_fma_peak(const char **isa);
// The same for bf16 products with float32 accumulation, the limit of the bf16
// GEMMs: AMX tdpbf16ps tiles where the CPU and kernel allow them (*isa
// "amx-bf16"), else AVX512-BF16 vdpbf16ps ("avx512-bf16"); 0 ("none") without either.
double gemm_bf16_peak(const char **isa);

// Primitives created since the process started (tests: a training step after
// the first creates none) and cached now.
extern long gemm_primitives_created;
int gemm_primitives_cached(void);
// Frees the cached primitives and engine (at exit, or to bound memory).
void gemm_release(void);
#endif
