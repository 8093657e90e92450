// ==== Linear layers: y = x W^T + b, on OpenBLAS sgemm ========================
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "core/ops.h"

double petal_gemm_flops;

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int IC, int OC) {
    // Start from the bias rows so the GEMM accumulates into them (beta = 1).
    double t0 = prof_start();
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof *out);
    }
    prof_stop(PROF_ELEMWISE, t0);
    t0 = prof_start();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC,
                bias ? 1.0f : 0.0f, out, OC);
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
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight, IC,
                beta, dinp, IC);
    prof_stop(PROF_GEMM, t0);
    petal_gemm_flops += 2.0 * N * IC * OC;
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int IC, int OC) {
    if (dinp) linear_input_backward(dinp, dout, weight, N, IC, OC, 0.0f);
    if (dweight) {
        double t0 = prof_start();
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC,
                    1.0f, dweight, IC);
        prof_stop(PROF_GEMM, t0);
        petal_gemm_flops += 2.0 * N * IC * OC;
    }
    if (dbias) bias_backward(dbias, dout, N, OC);
}
