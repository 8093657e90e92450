// ==== GELU, exact form: x * Phi(x) with Phi the normal CDF (erf) ==============
#include <math.h>

#include "core/ops.h"

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * INV_SQRT2));
    }
}

void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    // d/dx [x Phi(x)] = Phi(x) + x phi(x)
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
#ifdef PETAL_CANARY
        pdf = 0.0f;  // canary build: a deliberately wrong derivative
#endif
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
}
