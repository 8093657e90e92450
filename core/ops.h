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
#include <stdint.h>

// ---- profile.c (op-family timing for `petal bench --profile`) -----------------
typedef enum {
    PROF_GEMM,         // linear layers, LoRA, mixture GEMMs (core/gemm.h's engine)
    PROF_ATTENTION,    // attention forward/backward (its small GEMMs and softmax)
    PROF_NORM,         // LayerNorm
    PROF_ACT,          // GELU and other activations
    PROF_ELEMWISE,     // residual adds, bias sums, copies, pooling
    PROF_ADAPTER,      // adapter/mixture non-GEMM work (GLU, depthwise conv, BatchNorm, routing)
    PROF_LOSS,         // softmax cross-entropy
    PROF_OPTIMIZER,    // AdamW
    PROF_NFAM
} prof_family;
extern int petal_profile;                   // nonzero: probes accumulate
extern double petal_profile_s[PROF_NFAM];   // seconds per family since the last reset
extern const char *const petal_profile_names[PROF_NFAM];
// t0 = prof_start(); ...; prof_stop(family, t0). Leaf ops only (no nesting).
double prof_start(void);
void prof_stop(prof_family f, double t0);

// ---- linear.c ---------------------------------------------------------------
// out (N, OC) = inp (N, IC) @ weight(OC, IC)^T + bias (OC); bias may be NULL.
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int IC, int OC);
// dinp (N, IC) = dout @ weight (overwritten); dweight (OC, IC) += dout^T @ inp;
// dbias (OC) += column sums of dout.
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int IC, int OC);
// dinp (N, IC) = dout @ weight + beta * dinp (beta 0 overwrites, 1 accumulates).
void linear_input_backward(float *dinp, const float *dout, const float *weight, int N, int IC,
                           int OC, float beta);
// The same two products with a frozen weight held in bf16 (model.dtype bf16):
// the input rounded to bf16 on the way in, float32 accumulation (core/gemm.h).
void linear_forward_bf16(float *out, const float *inp, const uint16_t *weight, const float *bias,
                         int N, int IC, int OC);
void linear_input_backward_bf16(float *dinp, const float *dout, const uint16_t *weight, int N,
                                int IC, int OC, float beta);
// Accumulates column sums: dbias (OC) += sum over rows of dout (N, OC).
void bias_backward(float *dbias, const float *dout, int N, int OC);
// Model FLOPs since the last reset: every GEMM the step needs (forward, input
// and weight gradients that something trains through, attention's products),
// counted once. Work done again to save memory (attention's scores, rebuilt in
// the backward) goes to petal_recompute_flops instead.
extern double petal_gemm_flops;
extern double petal_recompute_flops;

// ---- layernorm.c ------------------------------------------------------------
// out (N, C) = (inp - mean) * rstd * weight + bias; mean, rstd (N) kept for
// backward (either may be NULL when nothing is kept).
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, float eps, int N, int C);
// out = (inp - mean) * rstd * weight + bias from kept statistics: recomputes a
// forward output the backward needs instead of storing it.
void layernorm_apply(float *out, const float *inp, const float *mean, const float *rstd,
                     const float *weight, const float *bias, int N, int C);
// dinp (N, C) += input gradient (accumulates: the residual stream adds here);
// dweight, dbias (C) +=.
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C);

// ---- gelu.c (exact erf GELU) --------------------------------------------------
void gelu_forward(float *out, const float *inp, size_t n);
// inp (N, C) += bias (C) per row, then out = gelu(inp): the bias add of the
// layer before GELU, fused into the GELU pass.
void bias_gelu_forward(float *out, float *inp, const float *bias, int N, int C);
// dinp = dout * gelu'(inp); dinp may alias dout.
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
// The same, also recomputing out = gelu(inp) (the forward output is not kept);
// dinp may alias dout.
void gelu_backward_recompute(float *dinp, float *out, const float *dout, const float *inp,
                             size_t n);

// ---- attention.c (flash-style: probabilities recomputed, never kept) ------------
// Per example b and head h: P = softmax(Q K^T / sqrt(HS)), out = P V, with
// Q (T, C) rows of stride ldq, K and V (T, C) rows of stride ldkv, head h in
// columns h*HS..h*HS+HS-1 (q = qkv, k = qkv + C, v = qkv + 2C, ldq = ldkv = 3C).
// PK prefix keys/values pk, pv (PK, C) (prefix tuning; NULL when PK = 0) join
// every example's keys: each query attends over Tk = T + PK keys.
// lse (B, NH, T) keeps each row's log-sum-exp for the backward (NULL: not kept).
// scratch: nthr * attention_scratch_floats(T, Tk, HS); at most nthr threads run.
size_t attention_scratch_floats(int T, int Tk, int HS);
void attention_forward(float *out, float *lse, float *scratch, int nthr, const float *q,
                       const float *k, const float *v, const float *pk, const float *pv, int ldq,
                       int ldkv, int PK, int B, int T, int C, int NH);
// dq (stride ldq), dk and dv (stride ldkv) overwritten; dpk, dpv (B, PK, C)
// per-example prefix gradients, overwritten (the caller sums over b).
void attention_backward(float *dq, float *dk, float *dv, float *dpk, float *dpv, float *scratch,
                        int nthr, const float *dout, const float *q, const float *k,
                        const float *v, const float *pk, const float *pv, const float *lse,
                        int ldq, int ldkv, int PK, int B, int T, int C, int NH);
// Query rows per block; 0 (default) sizes blocks for the L2 cache. Tests set
// it small to exercise the multi-block path on tiny shapes.
extern int attention_block_rows;

// ---- lora.c -------------------------------------------------------------------
// out (N, OC; row stride ldo) += s * (u A^T) B^T; z (N, r) = s u A^T kept for backward.
void lora_forward(float *out, float *z, const float *u, const float *A, const float *B, float s,
                  int N, int C, int r, int OC, int ldo);
// dA (r, C), dB (OC, r) +=; du (N, C) += (when non-NULL); dz (N, r) scratch.
void lora_backward(float *du, float *dA, float *dB, float *dz, const float *dout, int ldo,
                   const float *u, const float *z, const float *A, const float *B, float s, int N,
                   int C, int r, int OC);

// ---- adapter.c (bottleneck and Conformer adapters) ----------------------------------
typedef struct {
    float *down_w, *down_b, *up_w, *up_b;  // bottleneck: (D, C), (D), (C, D), (C)
    float *norm_w, *norm_b;                // Conformer: LayerNorm (C)
    float *pw1_w, *pw1_b;                  // (2D, C), (2D) pointwise conv to the GLU
    float *dw_w, *dw_b;                    // (D, 1, k), (D) depthwise conv over tokens
    float *bn_w, *bn_b;                    // (D) BatchNorm affine
    float *bn_mean, *bn_var;               // (D) running statistics (buffers, never trained)
    float *pw2_w, *pw2_b;                  // (C, D), (C) pointwise conv back to C
} adapter_tensors;

// Activations of one adapter over N = B*T rows.
typedef struct {
    float *hid, *act;             // bottleneck (N, D) before / after GELU
    float *nout, *nmean, *nrstd;  // Conformer LayerNorm (N, C) (forward scratch: the backward
                                  // rebuilds it from u), (N), (N)
    float *p;                     // (N, 2D) before the GLU
    float *g;                     // (N, D) GLU output
    float *c;                     // (N, D) depthwise conv output
    float *bmean, *brstd;         // (D) batch statistics of the BatchNorm
    float *y;                     // (N, D) BatchNorm output
    float *s;                     // (N, D) SiLU output
} adapter_acts;

// Floats of backward scratch an adapter needs for N rows.
size_t adapter_scratch_floats(int conformer, int N, int C, int D);
// out (N, C) = adapter(u). training selects BatchNorm batch statistics (and
// updates the running ones).
void adapter_forward(float *out, adapter_acts *a, const float *u, const adapter_tensors *w,
                     int conformer, int training, int B, int T, int C, int D, int k);
// du (N, C) += input gradient (if non-NULL); parameter gradients in g (NULL
// pointers skipped) +=.
void adapter_backward(float *du, const adapter_tensors *g, float *scratch, const float *dout,
                      const float *u, const adapter_acts *a, const adapter_tensors *w,
                      int conformer, int B, int T, int C, int D, int k);

// ---- moa.c (mixtures of bottleneck adapters) ------------------------------------------
typedef struct {
    adapter_tensors *experts;    // (E) bottleneck experts
    float *router_w, *router_b;  // Dense-MoA router (E, C), (E)
    float *slots;                // Soft-MoA slot parameters Phi (C, E, S)
} moa_tensors;

// Activations over N = B*T rows (per layer slab).
typedef struct {
    adapter_acts ex[64];  // soft: per expert, hid and act over its rows; dense: ex[0].hid,
                          // ex[0].act (N, E*D) hold every expert's, side by side
    float *probs;         // dense (N, E) router probabilities
    float *y;             // dense: forward scratch (the packed expert GEMMs' operands);
                          // soft (E, B, S, C) slot outputs
    float *xs;            // soft (E, B, S, C) slot inputs
    float *dp, *cb;       // soft (B, T, E*S) dispatch (softmax over T) and combine weights
} moa_acts;

// Floats of Dense-MoA forward scratch for N rows (the packed GEMM operands).
size_t moa_dense_forward_floats(size_t N, int C, int D, int E);
// Floats of backward scratch for one site.
size_t moa_scratch_floats(int soft, int B, int T, int C, int D, int E, int S);
// out (N, C) = mixture(u); soft selects Soft-MoA (slots) over Dense-MoA (router).
void moa_forward(float *out, moa_acts *a, const float *u, const moa_tensors *w, int soft, int B,
                 int T, int C, int D, int E, int S);
// du (N, C) += input gradient when non-NULL; parameter gradients +=.
void moa_backward(float *du, const moa_tensors *g, float *scratch, const float *dout,
                  const float *u, const moa_acts *a, const moa_tensors *w, int soft, int B, int T,
                  int C, int D, int E, int S);

// ---- patch_embed.c ------------------------------------------------------------
// The Conv2d(1 -> C, P x P, stride (fs, ts)) patch embedding as im2col + GEMM.
// fbank (B, frames, F) is read as the (F x frames) image HF builds by
// transposing; cols (B, NP, P*P) with patches f-major (index fi*t_dim + ti).
void patch_im2col(float *cols, const float *fbank, int B, int frames, int F, int P, int fs,
                  int ts);
// x (B, T, C): token 0 = cls + pos[0]; then either the distillation token
// (dist + pos[1]) or, with prompt tuning, NPR prompt tokens (no position
// embedding); then patches = cols @ w^T + b + pos[2..]. T = 1 + max(NPR, 1) + NP.
void embed_forward(float *x, const float *cols, const float *patch_w, const float *patch_b,
                   const float *cls, const float *dist, const float *prompt, const float *pos,
                   int B, int NP, int NPR, int PP, int C);
// Parameter gradients from dx (B, T, C); any of the outputs may be NULL.
void embed_backward(float *dpatch_w, float *dpatch_b, float *dcls, float *ddist, float *dprompt,
                    float *dpos, const float *dx, const float *cols, int B, int NP, int NPR, int PP,
                    int C);

// ---- loss.c (pooling, softmax cross-entropy) ------------------------------------
typedef enum {
    POOL_ALL = 0,        // mean over all tokens (the reference default)
    POOL_CLS,            // token 0
    POOL_CLS_DIST,       // mean of CLS and distillation tokens (HF's pooler)
    POOL_PROMPTS,        // mean of the prompt tokens
    POOL_SPEECH,         // mean of the patch tokens after the prompts
    POOL_PROMPTS_SPEECH  // mean of every token but CLS
} ast_pool;
// pooled (B, C) = mean of tokens [t0, t1) of x (B, T, C).
void pool_forward(float *pooled, const float *x, int t0, int t1, int B, int T, int C);
// dx (B, T, C) overwritten from dpooled (B, C).
void pool_backward(float *dx, const float *dpooled, int t0, int t1, int B, int T, int C);
// probs (B, K) softmax of logits; returns mean cross-entropy over the batch.
// Counts correct argmax predictions into *correct when non-NULL.
double crossentropy_forward(float *probs, int *correct, const float *logits, const int *labels,
                            int B, int K);
// dlogits (B, K) = (probs - onehot) / B.
void crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B, int K);
#endif
