// Vectorised float math for petal's element-wise ops: GCC vector extensions as
// wide as the target's registers (16 lanes with AVX-512, 8 with AVX, else 4),
// so no libm call sits inside a hot loop.
// Every function is lane-independent: a value's result does not depend on its
// position in an array or on how rows are split across threads.
#ifndef PETAL_VMATH_H
#define PETAL_VMATH_H
#include <stddef.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define VL 16
#elif defined(__AVX__)
#define VL 8
#else
#define VL 4
#endif
typedef float vfloat __attribute__((vector_size(VL * 4)));
typedef int vint __attribute__((vector_size(VL * 4)));

static inline vfloat vload(const float *p) {
    vfloat v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, vfloat v) { memcpy(p, &v, sizeof v); }
// The first n (< VL) lanes from p, the rest 0 / stored back. Masked moves
// where the target has them (a variable-length memcpy is a library call).
static inline vfloat vload_part(const float *p, size_t n) {
#if defined(__AVX512F__)
    return (vfloat)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#else
    vfloat v = {0};
    memcpy(&v, p, n * sizeof *p);
    return v;
#endif
}
static inline void vstore_part(float *p, vfloat v, size_t n) {
#if defined(__AVX512F__)
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#else
    memcpy(p, &v, n * sizeof *p);
#endif
}
static inline vfloat vbcast(float x) { return (vfloat){0} + x; }
// All-ones in lanes 0..n-1.
static inline vint vlanes_below(int n) {
    static const int iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    vint i;
    memcpy(&i, iota, sizeof i);
    return i < n;
}
// Lanes of a where mask is all ones, else lanes of b.
static inline vfloat vselect(vint mask, vfloat a, vfloat b) {
    return (vfloat)((mask & (vint)a) | (~mask & (vint)b));
}
static inline vfloat vmax(vfloat a, vfloat b) { return vselect(a > b, a, b); }
static inline vfloat vmin(vfloat a, vfloat b) { return vselect(a < b, a, b); }
static inline vfloat vabs(vfloat a) { return (vfloat)((vint)a & 0x7fffffff); }
// Horizontal sum and max, in a fixed pairwise order.
static inline float vhsum(vfloat v) {
    float s[VL];
    memcpy(s, &v, sizeof s);
    for (int w = VL / 2; w > 0; w /= 2)
        for (int i = 0; i < w; i++) s[i] += s[i + w];
    return s[0];
}
static inline float vhmax(vfloat v) {
    float s[VL];
    memcpy(s, &v, sizeof s);
    for (int w = VL / 2; w > 0; w /= 2)
        for (int i = 0; i < w; i++) s[i] = s[i + w] > s[i] ? s[i + w] : s[i];
    return s[0];
}

// a * b + c, fused where the target has FMA (ISO C mode never contracts a*b+c
// by itself); polynomial evaluation takes half the instructions and latency.
static inline vfloat vfma(vfloat a, vfloat b, vfloat c) {
#if defined(__AVX512F__)
    return (vfloat)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__) && defined(__AVX__)
    return (vfloat)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

// Correctly rounded square root (the instruction; the scalar fallback is sqrtf's).
static inline vfloat vsqrt(vfloat x) {
#if defined(__AVX512F__)
    return (vfloat)_mm512_sqrt_ps((__m512)x);
#elif defined(__AVX__)
    return (vfloat)_mm256_sqrt_ps((__m256)x);
#elif defined(__SSE__)
    return (vfloat)_mm_sqrt_ps((__m128)x);
#else
    for (int i = 0; i < VL; i++) x[i] = __builtin_sqrtf(x[i]);
    return x;
#endif
}

// e^x, relative error < 1e-7 (Cody-Waite reduction to |r| <= ln2/2 and the
// Cephes expf polynomial); 0 below -87.3 (where float exp leaves the normal
// range), saturated above 88.7. -inf gives 0.
static inline vfloat vexp(vfloat x) {
    const float shift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    vint under = x < -87.33654f;
    x = vmin(vmax(x, vbcast(-87.33654f)), vbcast(88.72283f));
    vfloat t = vfma(x, vbcast(1.44269504088896341f), vbcast(shift));
    vfloat n = t - shift;
    vfloat r = vfma(n, vbcast(-0.693359375f), x);
    r = vfma(n, vbcast(2.12194440e-4f), r);
    vfloat z = r * r;
    vfloat p = vfma(r, vbcast(1.9875691500e-4f), vbcast(1.3981999507e-3f));
    p = vfma(p, r, vbcast(8.3334519073e-3f));
    p = vfma(p, r, vbcast(4.1665795894e-2f));
    p = vfma(p, r, vbcast(1.6666665459e-1f));
    p = vfma(p, r, vbcast(5.0000001201e-1f));
    p = vfma(p, z, r + 1.0f);
    // 2^n from n's integer bits inside t (bias 0x4B400000 = bits of `shift`)
    vint e = ((vint)t - 0x4B400000 + 127) << 23;
    return vselect(under, vbcast(0.0f), p * (vfloat)e);
}

// The normal CDF Phi(x) = erfc(-x / sqrt 2) / 2 via Numerical Recipes' erfcc
// (relative error of erfc < 1.2e-7 everywhere), so Phi keeps its relative
// accuracy deep in the negative tail where 1 + erf(x) would cancel.
static inline vfloat vnormcdf(vfloat x) {
    vfloat z = vabs(x) * 0.70710678118654752f;
    vfloat t = 1.0f / vfma(z, vbcast(0.5f), vbcast(1.0f));
    vfloat p = vfma(t, vbcast(0.17087277f), vbcast(-0.82215223f));
    p = vfma(p, t, vbcast(1.48851587f));
    p = vfma(p, t, vbcast(-1.13520398f));
    p = vfma(p, t, vbcast(0.27886807f));
    p = vfma(p, t, vbcast(-0.18628806f));
    p = vfma(p, t, vbcast(0.09678418f));
    p = vfma(p, t, vbcast(0.37409196f));
    p = vfma(p, t, vbcast(1.00002368f));
    p = vfma(p, t, vbcast(-1.26551223f));
    vfloat half_erfc = 0.5f * t * vexp(vfma(-z, z, p));
    return vselect(x < 0.0f, half_erfc, 1.0f - half_erfc);
}

// The standard normal density phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
static inline vfloat vnormpdf(vfloat x) { return 0.39894228040143268f * vexp(-0.5f * x * x); }
#endif
