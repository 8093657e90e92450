// ==== Pooling over tokens and softmax cross-entropy ===========================
#include <math.h>
#include <string.h>

#include "core/ops.h"

void pool_forward(float *pooled, const float *x, int t0, int t1, int B, int T, int C) {
    float inv = 1.0f / (float)(t1 - t0);
#pragma omp parallel for schedule(static)  // examples are independent
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * T * C;
        float *o = pooled + (size_t)b * C;
        memset(o, 0, (size_t)C * sizeof *o);
        for (int t = t0; t < t1; t++)
            for (int c = 0; c < C; c++) o[c] += xb[(size_t)t * C + c];
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

void pool_backward(float *dx, const float *dpooled, int t0, int t1, int B, int T, int C) {
    float inv = 1.0f / (float)(t1 - t0);
#pragma omp parallel for schedule(static)  // examples are independent
    for (int b = 0; b < B; b++) {
        float *dxb = dx + (size_t)b * T * C;
        memset(dxb, 0, (size_t)T * C * sizeof *dx);
        for (int t = t0; t < t1; t++)
            for (int c = 0; c < C; c++) dxb[(size_t)t * C + c] = dpooled[(size_t)b * C + c] * inv;
    }
}

double crossentropy_forward(float *probs, int *correct, const float *logits, const int *labels,
                            int B, int K) {
    double loss = 0.0;
    int right = 0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        int arg = 0;
        for (int k = 1; k < K; k++) arg = z[k] > z[arg] ? k : arg;
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[k] - z[arg]);
        for (int k = 0; k < K; k++) p[k] = (float)(exp((double)z[k] - z[arg]) / s);
        loss += log(s) - ((double)z[labels[b]] - z[arg]);
        right += arg == labels[b];
    }
    if (correct) *correct = right;
    return loss / B;
}

void crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B, int K) {
    float inv = 1.0f / (float)B;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++)
            dlogits[(size_t)b * K + k] =
                (probs[(size_t)b * K + k] - (k == labels[b] ? 1.0f : 0.0f)) * inv;
}
