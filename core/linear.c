// ==== Linear layers: y = x W^T + b, on the GEMM engine (core/gemm.h) ==========
#include <omp.h>
#include <string.h>

#include "core/gemm.h"
#include "core/ops.h"

double petal_gemm_flops;

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int IC, int OC) {
    // The bias is the GEMM's own: oneDNN adds it to the accumulator (a fused
    // bias, acc + b, one rounding); OpenBLAS starts from the bias rows with beta 1.
    double t0 = prof_start();
    gemm(0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC, bias);
    prof_stop(PROF_GEMM, t0);
    petal_gemm_flops += 2.0 * N * IC * OC;
}

void linear_forward_bf16(float *out, const float *inp, const bf16 *weight, const float *bias,
                         int N, int IC, int OC) {
    double t0 = prof_start();
    gemm_bf16w(0, 1, N, OC, IC, inp, IC, weight, IC, 0.0f, out, OC, bias);
    prof_stop(PROF_GEMM, t0);
    petal_gemm_flops += 2.0 * N * IC * OC;
}

void bias_backward(float *dbias, const float *dout, int N, int OC) {
    // Columns split across threads; each thread sums its columns over all rows.
    double t0 = prof_start();
#pragma omp parallel
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        int c0 = (int)((long)OC * tid / nt), c1 = (int)((long)OC * (tid + 1) / nt);
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OC;
            for (int c = c0; c < c1; c++) dbias[c] += row[c];
        }
    }
    prof_stop(PROF_ELEMWISE, t0);
}

void linear_input_backward(float *dinp, const float *dout, const float *weight, int N, int IC,
                           int OC, float beta) {
    double t0 = prof_start();
    gemm(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, beta, dinp, IC, NULL);
    prof_stop(PROF_GEMM, t0);
    petal_gemm_flops += 2.0 * N * IC * OC;
}

void linear_input_backward_bf16(float *dinp, const float *dout, const bf16 *weight, int N, int IC,
                                int OC, float beta) {
    double t0 = prof_start();
    gemm_bf16w(0, 0, N, IC, OC, dout, OC, weight, IC, beta, dinp, IC, NULL);
    prof_stop(PROF_GEMM, t0);
    petal_gemm_flops += 2.0 * N * IC * OC;
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int IC, int OC) {
    if (dinp) linear_input_backward(dinp, dout, weight, N, IC, OC, 0.0f);
    if (dweight) {
        double t0 = prof_start();
        gemm(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC, NULL);
        prof_stop(PROF_GEMM, t0);
        petal_gemm_flops += 2.0 * N * IC * OC;
    }
    if (dbias) bias_backward(dbias, dout, N, OC);
}
