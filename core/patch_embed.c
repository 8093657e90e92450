// ==== Patch embedding: Conv2d(1 -> C, P x P, stride (fs, ts)) as im2col + GEMM ==
// HF transposes the (frames, F) fbank to a (1, F, frames) image, so the
// kernel's first axis runs over mel bins and its second over frames.
#include <string.h>

#include "core/ops.h"

void patch_im2col(float *cols, const float *fbank, int B, int frames, int F, int P, int fs,
                  int ts) {
    int fd = (F - P) / fs + 1, td = (frames - P) / ts + 1, NP = fd * td, PP = P * P;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int p = 0; p < NP; p++) {
            int fi = p / td, ti = p % td;
            const float *img = fbank + (size_t)b * frames * F;
            float *col = cols + ((size_t)b * NP + p) * PP;
            for (int kf = 0; kf < P; kf++)
                for (int kt = 0; kt < P; kt++)
                    col[kf * P + kt] = img[(size_t)(ti * ts + kt) * F + fi * fs + kf];
        }
    }
}

void embed_forward(float *x, const float *cols, const float *patch_w, const float *patch_b,
                   const float *cls, const float *dist, const float *pos, int B, int NP, int PP,
                   int C) {
    int T = NP + 2;
    for (int b = 0; b < B; b++)
        linear_forward(x + ((size_t)b * T + 2) * C, cols + (size_t)b * NP * PP, patch_w, patch_b,
                       NP, PP, C);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *xb = x + (size_t)b * T * C;
        memcpy(xb, cls, (size_t)C * sizeof *xb);
        memcpy(xb + C, dist, (size_t)C * sizeof *xb);
        for (size_t i = 0; i < (size_t)T * C; i++) xb[i] += pos[i];
    }
}

void embed_backward(float *dpatch_w, float *dpatch_b, float *dcls, float *ddist, float *dpos,
                    const float *dx, const float *cols, int B, int NP, int PP, int C) {
    int T = NP + 2;
    for (int b = 0; b < B; b++) {
        const float *dxb = dx + (size_t)b * T * C;
        if (dcls)
            for (int c = 0; c < C; c++) dcls[c] += dxb[c];
        if (ddist)
            for (int c = 0; c < C; c++) ddist[c] += dxb[C + c];
        if (dpos)
            for (size_t i = 0; i < (size_t)T * C; i++) dpos[i] += dxb[i];
        if (dpatch_w || dpatch_b)
            linear_backward(NULL, dpatch_w, dpatch_b, dxb + 2 * C, cols + (size_t)b * NP * PP,
                            NULL, NP, PP, C);
    }
}
