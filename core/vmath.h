// Vectorised float math for petal's element-wise ops: 16-lane GCC vector
// extensions (one AVX-512 register here; -march lowers them to AVX2 or SSE
// pairs elsewhere), so no libm call sits inside a hot loop.
// Every function is lane-independent: a value's result does not depend on its
// position in an array or on how rows are split across threads.
#ifndef PETAL_VMATH_H
#define PETAL_VMATH_H
#include <stddef.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#define VL 16
typedef float vfloat __attribute__((vector_size(64)));
typedef int vint __attribute__((vector_size(64)));

static inline vfloat vload(const float *p) {
    vfloat v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, vfloat v) { memcpy(p, &v, sizeof v); }
// The first n (< VL) lanes from p, the rest 0 / stored back.
static inline vfloat vload_part(const float *p, size_t n) {
    vfloat v = {0};
    memcpy(&v, p, n * sizeof *p);
    return v;
}
static inline void vstore_part(float *p, vfloat v, size_t n) { memcpy(p, &v, n * sizeof *p); }
static inline vfloat vbcast(float x) { return (vfloat){0} + x; }
// All-ones in lanes 0..n-1.
static inline vint vlanes_below(int n) {
    return (vint){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} < n;
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

// Correctly rounded square root (the instruction; the scalar fallback is sqrtf's).
static inline vfloat vsqrt(vfloat x) {
#if defined(__AVX512F__)
    return (vfloat)_mm512_sqrt_ps((__m512)x);
#elif defined(__AVX__)
    __m256 lo, hi;
    memcpy(&lo, &x, 32);
    memcpy(&hi, (const char *)&x + 32, 32);
    lo = _mm256_sqrt_ps(lo), hi = _mm256_sqrt_ps(hi);
    vfloat r;
    memcpy(&r, &lo, 32);
    memcpy((char *)&r + 32, &hi, 32);
    return r;
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
    vfloat t = x * 1.44269504088896341f + shift;
    vfloat n = t - shift;
    vfloat r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    vfloat z = r * r;
    vfloat p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    // 2^n from n's integer bits inside t (bias 0x4B400000 = bits of `shift`)
    vint e = ((vint)t - 0x4B400000 + 127) << 23;
    return vselect(under, vbcast(0.0f), p * (vfloat)e);
}

// The normal CDF Phi(x) = erfc(-x / sqrt 2) / 2 via Numerical Recipes' erfcc
// (relative error of erfc < 1.2e-7 everywhere), so Phi keeps its relative
// accuracy deep in the negative tail where 1 + erf(x) would cancel.
static inline vfloat vnormcdf(vfloat x) {
    vfloat z = vabs(x) * 0.70710678118654752f;
    vfloat t = 1.0f / (z * 0.5f + 1.0f);
    vfloat p = t * 0.17087277f - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    vfloat half_erfc = 0.5f * t * vexp(p - z * z);
    return vselect(x < 0.0f, half_erfc, 1.0f - half_erfc);
}

// The standard normal density phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
static inline vfloat vnormpdf(vfloat x) { return 0.39894228040143268f * vexp(-0.5f * x * x); }
#endif
