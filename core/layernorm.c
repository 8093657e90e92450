// ==== LayerNorm over the channel axis (biased variance, as PyTorch) ===========
// Rows split across threads; each row is reduced with vector
// accumulators (core/vmath.h) in a fixed order, so results do not depend on
// the thread count. Parameter gradients split the columns across threads
// instead (no cross-thread reduction).
#include <math.h>
#include <omp.h>

#include "core/ops.h"
#include "core/vmath.h"

// Iterates c over [0, C) in VL steps; the last step covers the remainder (len < VL).
#define FOR_LANES(c, len, C) \
    for (size_t c = 0, len = (C) < VL ? (size_t)(C) : VL; c < (size_t)(C); c += VL, len = (size_t)(C) - c < VL ? (size_t)(C) - c : VL)

static inline vfloat ld(const float *p, size_t len) { return len == VL ? vload(p) : vload_part(p, len); }
static inline void st(float *p, vfloat v, size_t len) {
    if (len == VL) vstore(p, v);
    else vstore_part(p, v, len);
}

// y = (x - m) r w + b for one row.
static inline void ln_apply_row(float *y, const float *x, float m, float r, const float *w,
                                const float *b, int C) {
    FOR_LANES(c, len, C) st(y + c, (ld(x + c, len) - m) * r * ld(w + c, len) + ld(b + c, len), len);
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, float eps, int N, int C) {
    double t0 = prof_start();
#pragma omp parallel for schedule(static) if (N > 8)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        vfloat s = {0};
        FOR_LANES(c, len, C) s += ld(x + c, len);
        float m = vhsum(s) / C;
        vfloat v = {0};
        FOR_LANES(c, len, C) {
            vfloat d = ld(x + c, len) - m;
            if (len < VL) d = vselect(vlanes_below((int)len), d, vbcast(0.0f));
            v += d * d;
        }
        float r = 1.0f / sqrtf(vhsum(v) / C + eps);
        ln_apply_row(out + (size_t)n * C, x, m, r, weight, bias, C);
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
    prof_stop(PROF_NORM, t0);
}

void layernorm_apply(float *out, const float *inp, const float *mean, const float *rstd,
                     const float *weight, const float *bias, int N, int C) {
    double t0 = prof_start();
#pragma omp parallel for schedule(static) if (N > 8)
    for (int n = 0; n < N; n++)
        ln_apply_row(out + (size_t)n * C, inp + (size_t)n * C, mean[n], rstd[n], weight, bias, C);
    prof_stop(PROF_NORM, t0);
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C) {
    double t0 = prof_start();
    // One parallel region: rows for dinp, then (no barrier) columns for the
    // parameter sums; both only read dout and inp.
#pragma omp parallel if (N > 8)
    {
        if (dinp) {
            // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * weight.
#pragma omp for schedule(static) nowait
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
                float *dx = dinp + (size_t)n * C;
                float m = mean[n], r = rstd[n];
                vfloat sg = {0}, sgx = {0};
                FOR_LANES(c, len, C) {  // lanes past len load 0, so they add 0
                    vfloat g = ld(dy + c, len) * ld(weight + c, len);
                    sg += g;
                    sgx += g * ((ld(x + c, len) - m) * r);
                }
                float mg = vhsum(sg) / C, mgx = vhsum(sgx) / C;
                FOR_LANES(c, len, C) {
                    vfloat xhat = (ld(x + c, len) - m) * r;
                    vfloat g = ld(dy + c, len) * ld(weight + c, len);
                    st(dx + c, ld(dx + c, len) + r * (g - mg - xhat * mgx), len);
                }
            }
        }
        if (dweight || dbias) {
            // Columns split across threads so the sums need no reduction.
            int tid = omp_get_thread_num(), nt = omp_get_num_threads();
            int c0 = (int)((long)C * tid / nt), c1 = (int)((long)C * (tid + 1) / nt);
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
                float m = mean[n], r = rstd[n];
                if (dweight)
                    for (int c = c0; c < c1; c++) dweight[c] += dy[c] * ((x[c] - m) * r);
                if (dbias)
                    for (int c = c0; c < c1; c++) dbias[c] += dy[c];
            }
        }
    }
    prof_stop(PROF_NORM, t0);
}
