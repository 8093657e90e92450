// ==== GELU, exact form: x * Phi(x) with Phi the normal CDF (erf) ==============
// Vectorised (core/vmath.h): Phi from an erfc approximation with relative error
// < 1.2e-7, so the tail keeps its accuracy; lanes are independent, so results
// do not depend on the thread split.
#include "core/ops.h"
#include "core/vmath.h"

// d/dx [x Phi(x)] = Phi(x) + x phi(x)
static inline vfloat gelu_grad(vfloat x, vfloat cdf) {
#ifdef PETAL_CANARY
    (void)x;
    return cdf;  // canary build: a deliberately wrong derivative (drops x phi(x))
#else
    return cdf + x * vnormpdf(x);
#endif
}

// Rows of the element range split evenly over threads, VL-aligned.
#define GELU_LOOP(n, ...)                                                        \
    do {                                                                         \
        size_t nv_ = (n) / VL;                                                   \
        _Pragma("omp parallel for schedule(static) if (nv_ > 256)")              \
        for (size_t v_ = 0; v_ < nv_; v_++) {                                    \
            size_t i = v_ * VL, len = VL;                                        \
            __VA_ARGS__                                                          \
        }                                                                        \
        if ((n) % VL) {                                                          \
            size_t i = nv_ * VL, len = (n) % VL;                                 \
            __VA_ARGS__                                                          \
        }                                                                        \
    } while (0)

void gelu_forward(float *out, const float *inp, size_t n) {
    double t0 = prof_start();
    GELU_LOOP(n, {
        vfloat x = vload_part(inp + i, len);
        vstore_part(out + i, x * vnormcdf(x), len);
    });
    prof_stop(PROF_ACT, t0);
}

void bias_gelu_forward(float *out, float *inp, const float *bias, int N, int C) {
    double t0 = prof_start();
#pragma omp parallel for schedule(static) if ((size_t)N * C > 65536)
    for (int n = 0; n < N; n++) {
        float *x = inp + (size_t)n * C, *y = out + (size_t)n * C;
        int c = 0;
        for (; c + VL <= C; c += VL) {
            vfloat v = vload(x + c) + vload(bias + c);
            vstore(x + c, v);
            vstore(y + c, v * vnormcdf(v));
        }
        if (c < C) {
            size_t len = (size_t)(C - c);
            vfloat v = vload_part(x + c, len) + vload_part(bias + c, len);
            vstore_part(x + c, v, len);
            vstore_part(y + c, v * vnormcdf(v), len);
        }
    }
    prof_stop(PROF_ACT, t0);
}

void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    double t0 = prof_start();
    GELU_LOOP(n, {
        vfloat x = vload_part(inp + i, len), d = vload_part(dout + i, len);
        vstore_part(dinp + i, d * gelu_grad(x, vnormcdf(x)), len);
    });
    prof_stop(PROF_ACT, t0);
}

void gelu_backward_recompute(float *dinp, float *out, const float *dout, const float *inp,
                             size_t n) {
    double t0 = prof_start();
    GELU_LOOP(n, {
        vfloat x = vload_part(inp + i, len), d = vload_part(dout + i, len);
        vfloat cdf = vnormcdf(x);
        vstore_part(out + i, x * cdf, len);
        vstore_part(dinp + i, d * gelu_grad(x, cdf), len);
    });
    prof_stop(PROF_ACT, t0);
}
