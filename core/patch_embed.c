// ==== Patch embedding: Conv2d(1 -> C, P x P, stride (fs, ts)) as im2col + GEMM ==
// HF transposes the (frames, F) fbank to a (1, F, frames) image, so the
// kernel's first axis runs over mel bins and its second over frames. Prompt
// tuning puts its tokens where the distillation token was (docs/METHODS.md).
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
                   const float *cls, const float *dist, const float *prompt, const float *pos,
                   int B, int NP, int NPR, int PP, int C) {
    int mid = prompt ? NPR : 1, T = 1 + mid + NP, off = 1 + mid;
    for (int b = 0; b < B; b++)
        linear_forward(x + ((size_t)b * T + off) * C, cols + (size_t)b * NP * PP, patch_w, patch_b,
                       NP, PP, C);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *xb = x + (size_t)b * T * C;
        for (int c = 0; c < C; c++) xb[c] = cls[c] + pos[c];
        if (prompt) memcpy(xb + C, prompt, (size_t)NPR * C * sizeof *xb);
        else
            for (int c = 0; c < C; c++) xb[C + c] = dist[c] + pos[C + c];
        const float *pp = pos + 2 * (size_t)C;
        float *xp = xb + (size_t)off * C;
        for (size_t i = 0; i < (size_t)NP * C; i++) xp[i] += pp[i];
    }
}

void embed_backward(float *dpatch_w, float *dpatch_b, float *dcls, float *ddist, float *dprompt,
                    float *dpos, const float *dx, const float *cols, int B, int NP, int NPR, int PP,
                    int C) {
    int mid = NPR ? NPR : 1, T = 1 + mid + NP, off = 1 + mid;
    for (int b = 0; b < B; b++) {
        const float *dxb = dx + (size_t)b * T * C;
        for (int c = 0; c < C; c++) {
            if (dcls) dcls[c] += dxb[c];
            if (dpos) dpos[c] += dxb[c];
        }
        if (NPR) {
            if (dprompt)
                for (size_t i = 0; i < (size_t)NPR * C; i++) dprompt[i] += dxb[C + i];
        } else {
            for (int c = 0; c < C; c++) {
                if (ddist) ddist[c] += dxb[C + c];
                if (dpos) dpos[C + c] += dxb[C + c];
            }
        }
        if (dpos)
            for (size_t i = 0; i < (size_t)NP * C; i++) dpos[2 * (size_t)C + i] += dxb[(size_t)off * C + i];
        if (dpatch_w || dpatch_b)
            linear_backward(NULL, dpatch_w, dpatch_b, dxb + (size_t)off * C,
                            cols + (size_t)b * NP * PP, NULL, NP, PP, C);
    }
}
