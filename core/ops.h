// Layer functions of the AST, forward and backward side by side in one file
// per layer family. Conventions: outputs first, then inputs, then sizes.
// Backward functions write what they compute first; parameter gradients
// accumulate (+=), input gradients are overwritten unless said otherwise.
// A NULL gradient pointer means "not needed" (frozen tensor, or nothing below
// needs it), and the work for it is skipped.
// Size letters: N rows (= B*T), B batch, T tokens, C channels, NH heads,
// HS head size, K classes, OC/IC output/input channels of a linear layer.
#ifndef PETAL_OPS_H
#define PETAL_OPS_H
#include <stddef.h>

// ---- linear.c ---------------------------------------------------------------
// out (N, OC) = inp (N, IC) @ weight(OC, IC)^T + bias (OC); bias may be NULL.
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int IC, int OC);
// dinp (N, IC) = dout @ weight (overwritten); dweight (OC, IC) += dout^T @ inp;
// dbias (OC) += column sums of dout.
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int IC, int OC);
// Accumulates column sums: dbias (OC) += sum over rows of dout (N, OC).
void bias_backward(float *dbias, const float *dout, int N, int OC);
// FLOPs counted by linear_forward/backward since the last reset.
extern double petal_gemm_flops;

// ---- layernorm.c ------------------------------------------------------------
// out (N, C) = (inp - mean) * rstd * weight + bias; mean, rstd (N) kept for backward.
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, float eps, int N, int C);
// dinp (N, C) += input gradient (accumulates: the residual stream adds here);
// dweight, dbias (C) +=.
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C);

// ---- gelu.c (exact erf GELU) --------------------------------------------------
void gelu_forward(float *out, const float *inp, size_t n);
// dinp = dout * gelu'(inp); dinp may alias dout.
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);

// ---- attention.c --------------------------------------------------------------
// qkv (B, T, 3C) holds [q | k | v] per token, head h in columns h*HS..h*HS+HS-1
// of each part. att (B, NH, T, T) keeps the softmax probabilities; out (B, T, C).
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
// dqkv (B, T, 3C) overwritten; scratch (T, T) per call.
void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH);

// ---- patch_embed.c ------------------------------------------------------------
// The Conv2d(1 -> C, 16x16, stride (fs, ts)) patch embedding as im2col + GEMM.
// fbank (B, frames, F) is read as the (F x frames) image HF builds by
// transposing; cols (B, NP, P*P) with patches f-major (index fi*t_dim + ti).
void patch_im2col(float *cols, const float *fbank, int B, int frames, int F, int P, int fs,
                  int ts);
// x (B, T, C) = [cls, dist, patches] + pos, where patches = cols @ w^T + b.
// T = NP + 2 here; patch rows are written at token offset 2.
void embed_forward(float *x, const float *cols, const float *patch_w, const float *patch_b,
                   const float *cls, const float *dist, const float *pos, int B, int NP, int PP,
                   int C);
// Parameter gradients from dx (B, T, C); any of the outputs may be NULL.
void embed_backward(float *dpatch_w, float *dpatch_b, float *dcls, float *ddist, float *dpos,
                    const float *dx, const float *cols, int B, int NP, int PP, int C);

// ---- loss.c (pooling, softmax cross-entropy) ------------------------------------
typedef enum { POOL_ALL = 0, POOL_CLS = 1, POOL_CLS_DIST = 2 } ast_pool;
// pooled (B, C) from x (B, T, C).
void pool_forward(float *pooled, const float *x, ast_pool pool, int B, int T, int C);
// dx (B, T, C) overwritten from dpooled (B, C).
void pool_backward(float *dx, const float *dpooled, ast_pool pool, int B, int T, int C);
// probs (B, K) softmax of logits; returns mean cross-entropy over the batch.
// Counts correct argmax predictions into *correct when non-NULL.
double crossentropy_forward(float *probs, int *correct, const float *logits, const int *labels,
                            int B, int K);
// dlogits (B, K) = (probs - onehot) / B.
void crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B, int K);
#endif
