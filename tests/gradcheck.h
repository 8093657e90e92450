// Finite-difference gradient checking shared by the tests: central
// differences of a scalar objective against an analytic gradient, reported as
// a relative L2 error over the checked elements.
#ifndef PETAL_TESTS_GRADCHECK_H
#define PETAL_TESTS_GRADCHECK_H
#include <math.h>
#include <stddef.h>

typedef double (*objective_fn)(void *ctx);

// Perturbs x[i] by +-eps for up to max_elems evenly spaced elements (all when
// n <= max_elems), restores it, and returns ||fd - grad|| / max(||fd||, 1e-3).
// The floor makes gradients that are zero in exact arithmetic (the attention
// key bias: softmax ignores a per-row constant) compare absolutely.
static inline double fd_relerr(objective_fn f, void *ctx, float *x, const float *grad, size_t n,
                        float eps, size_t max_elems) {
    size_t stride = n <= max_elems ? 1 : n / max_elems;
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i += stride) {
        float keep = x[i];
        x[i] = keep + eps;
        double fp = f(ctx);
        x[i] = keep - eps;
        double fm = f(ctx);
        x[i] = keep;
        double fd = (fp - fm) / (2.0 * (double)eps);
        num += (fd - grad[i]) * (fd - grad[i]);
        den += fd * fd;
    }
    return sqrt(num) / fmax(sqrt(den), 1e-3);
}

// Relative L2 error of a against reference b: ||a - b|| / ||b||, or ||a|| when b is 0.
static inline double rel_l2(const float *a, const double *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}
#endif
