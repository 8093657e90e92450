// ==== LayerNorm over the channel axis (biased variance, as PyTorch) ===========
#include <math.h>
#include <omp.h>

#include "core/ops.h"

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, float eps, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float s = 0.0f;
        for (int c = 0; c < C; c++) s += x[c];
        float m = s / C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        float r = 1.0f / sqrtf(v / C + eps);
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * r * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C) {
    if (dinp) {
        // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * weight.
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float m = mean[n], r = rstd[n];
            float sg = 0.0f, sgx = 0.0f;
            for (int c = 0; c < C; c++) {
                float g = dy[c] * weight[c];
                sg += g;
                sgx += g * (x[c] - m) * r;
            }
            sg /= C;
            sgx /= C;
            for (int c = 0; c < C; c++) {
                float xhat = (x[c] - m) * r;
                dx[c] += r * (dy[c] * weight[c] - sg - xhat * sgx);
            }
        }
    }
    if (dweight || dbias) {
        // Columns split across threads so the sums need no reduction.
#pragma omp parallel
        {
            int tid = omp_get_thread_num(), nt = omp_get_num_threads();
            int c0 = (int)((long)C * tid / nt), c1 = (int)((long)C * (tid + 1) / nt);
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
                float m = mean[n], r = rstd[n];
                if (dweight)
                    for (int c = c0; c < c1; c++) dweight[c] += dy[c] * (x[c] - m) * r;
                if (dbias)
                    for (int c = c0; c < c1; c++) dbias[c] += dy[c];
            }
        }
    }
}
