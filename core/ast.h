// The Audio Spectrogram Transformer (HF ASTModel architecture) with a
// classifier head, its parameter table, activation arena, forward and backward.
// A PETL method is a configuration of this one model: which table rows train,
// plus (in later methods) hooks on the one encoder block.
#ifndef PETAL_AST_H
#define PETAL_AST_H
#include <stdint.h>

#include "core/common.h"
#include "core/method.h"
#include "core/ops.h"
#include "core/params.h"

typedef struct {
    int C;        // hidden size
    int L;        // encoder layers
    int NH;       // attention heads
    int MLP;      // MLP hidden size
    int F;        // mel bins
    int frames;   // input frames (max_length)
    int patch;    // patch side (16 in AST)
    int fstride;  // patch stride over mel bins
    int tstride;  // patch stride over frames
    int K;        // classes
    ast_pool pool;
    float ln_eps;
    int head_ln;  // HF ASTForAudioClassification head: LayerNorm before the Linear
} ast_config;

// Named sizes: tiny (tests), small, base (ViT-B as in the study). K and frames
// get the given values. Returns PETAL_EINPUT for an unknown name.
int ast_config_preset(ast_config *cfg, const char *size, int frames, int K, petal_err *err);
// Validates sizes (C divisible by NH, the input at least one patch, ...).
int ast_config_check(const ast_config *cfg, petal_err *err);
int ast_fdim(const ast_config *cfg);
int ast_tdim(const ast_config *cfg);
// Tokens per example: patches + CLS + distillation.
int ast_tokens(const ast_config *cfg);
int ast_pool_parse(ast_pool *pool, const char *name, petal_err *err);
const char *ast_pool_name(ast_pool pool);

// Pointers to one encoder layer's tensors (into the parameter or gradient
// buffer; gradient pointers are NULL for frozen tensors, and hook tensors are
// NULL when the method has no such hook).
typedef struct {
    float *ln1_w, *ln1_b;  // (C)
    float *qkv_w;          // (3C, C): query, key, value weights, contiguous
    float *qkv_b;          // (3C)
    float *o_w, *o_b;      // (C, C), (C)
    float *ln2_w, *ln2_b;  // (C)
    float *fc1_w, *fc1_b;  // (MLP, C), (MLP)
    float *fc2_w, *fc2_b;  // (C, MLP), (C)
    // bf16 copies of the four GEMM weights above when the model holds its
    // frozen ones in bf16 (ast_model_use_bf16); NULL otherwise or when they train.
    const uint16_t *qkv_w16, *o_w16, *fc1_w16, *fc2_w16;
    float *lora_a[4];      // (r, C) per target q, k, v, o
    float *lora_b[4];      // (C, r)
    float *prefix_k, *prefix_v;  // (P/2, C)
    adapter_tensors ad[2];       // adapters at the MHSA [0] and FFN [1] sites
    moa_tensors moa[2];          // mixtures of adapters at the two sites
} ast_layer_tensors;

typedef struct {
    float *patch_w, *patch_b;  // (C, P*P), (C)
    float *cls, *dist;         // (C)
    float *pos;                // (NP + 2, C)
    float *prompt;             // (NPR, C) prompt tokens
    float *deep;               // (L - 1, NPR, C) deep prompts before layers 1..L-1
    ast_layer_tensors *layer;  // (L)
    float *lnf_w, *lnf_b;      // (C)
    float *head_w, *head_b;    // (K, C), (K)
    float *hln_w, *hln_b;      // (C) head LayerNorm (cfg.head_ln)
} ast_tensors;

// One encoder layer's activations. A layer the backward visits (a site slot
// >= bw_floor) points the fields its backward reads at its own slabs of the
// arena; every other field, every layer below the floor, and every layer of
// an inference forward point at the one shared scratch set (ast_acts.tmp),
// where the residual stream is updated in place. Fields are NULL when unused.
typedef struct {
    float *x;               // (B, T, C) layer input (residual stream)
    float *mean1, *rstd1;   // (B, T) LayerNorm-before statistics (its output is recomputed)
    float *qkv;             // (B, T, 3C) query | key | value
    float *lse;             // (B, NH, T) attention row log-sum-exp (probabilities are recomputed)
    float *atty;            // (B, T, C) attention output before the projection
    float *x2;              // (B, T, C) residual stream after attention
    float *mean2, *rstd2;   // (B, T) LayerNorm-after statistics
    float *fc1;             // (B, T, MLP) before GELU (kept) or (R, MLP) one row chunk (scratch)
    float *lora_z[4];       // (B, T, r) s u A^T per LoRA target (s the LoRA scaling)
    float *sin[2];          // (B, T, C) sublayer input when a sequential-before adapter feeds it
    float *sout[2];         // (B, T, C) sublayer output when an 'after' adapter reads it
    adapter_acts ad[2];     // adapters at the MHSA [0] and FFN [1] sites
    moa_acts moa[2];        // mixtures of adapters at the two sites
} ast_layer_acts;

// The activation arena's fields. The forward scratch and the backward scratch
// overlay each other (nothing in either outlives its pass).
typedef struct {
    ast_layer_acts *layer;       // (L) views for a forward that keeps activations
    ast_layer_acts tmp;          // the shared scratch set
    float *cols;                 // (Bm, NP, P*P) im2col patches
    float *enc;                  // (Bm, T, C) encoder output (the final LayerNorm's input)
    float *meanf, *rstdf;        // (Bm, T)
    float *pooled;               // (Bm, C)
    float *hln, *hmean, *hrstd;  // (Bm, C), (Bm), (Bm) head LayerNorm (cfg.head_ln)
    float *logits, *probs;       // (Bm, K)
    float *dpooled;              // (Bm, C)
    float *dlogits;              // (Bm, K)
    float *att;                  // attention scratch, nthr blocks (forward and backward)
    // forward scratch
    float *ln;                   // (Bm, T, C) LayerNorm output of the current site
    float *fsub, *ftmp, *fmoa;   // (Bm, T, C) sublayer output; adapter output; mixture output
    float *gel;                  // (R, MLP) GELU output of one FFN row chunk
    float *moay;                 // Dense-MoA: the packed expert GEMMs' operands (core/moa.c)
    // backward scratch
    float *dres;     // (Bm, T, C) gradient of the residual stream
    float *dln;      // (Bm, T, C) gradient of a LayerNorm output
    float *lnb;      // (Bm, T, C) a LayerNorm output recomputed for weight gradients
    float *dsub;     // (Bm, T, C) gradient of a sublayer output ('after' adapters)
    float *dsin;     // (Bm, T, C) gradient of a sublayer input (sequential-before adapters)
    float *datty;    // (Bm, T, C)
    float *dqkv;     // (Bm, T, 3C)
    float *dpk, *dpv;  // (Bm, PK, C) per-example prefix gradients
    float *dfc;      // (R, MLP) one FFN row chunk
    float *gelb;     // (R, MLP) GELU output recomputed for fc2's weight gradient
    float *dz;       // (Bm, T, r) LoRA
    float *dad;      // adapter backward scratch
    float *dmoa;     // mixture-of-adapters backward scratch
} ast_acts;

typedef struct {
    ast_config cfg;
    ast_method method;  // resolved: ranks and dims filled in
    int Bm;             // maximum batch
    int T, NP, PP;      // tokens, patches, patch pixels
    int NPR;            // prompt tokens (0 without prompt tuning)
    int PK;             // prefix keys (= values) per layer
    int Tk;             // keys per query: T + PK
    int AD;             // adapter bottleneck
    int ME, MS, MD;     // mixture of adapters: experts, slots per expert, expert bottleneck
    int bw_floor;       // lowest slot the backward reaches (see param_row.slot)
    int training;       // BatchNorm uses batch statistics (and updates running ones);
                        // 0 also makes ast_forward keep nothing (as ast_infer)
    int kept;           // the last forward kept what ast_backward needs
    int R;              // FFN row chunk (rows of fc1 / GELU scratch per GEMM pass)
    int nthr;           // threads the attention scratch is sized for
    float lora_s;       // LoRA scaling
    param_table params;
    ast_tensors w, g;   // weights, gradients (NULL where frozen)
    // Called by ast_backward as soon as encoder layer l's gradients are final
    // (top layer first; only layers the backward visits), e.g. to apply the
    // optimizer to them; returns 1 if it left them zero. NULL = none.
    // Required by ast_model_init_layerwise.
    int (*on_layer)(void *ctx, int l);
    void *on_layer_ctx;
    uint16_t *w16;      // bf16 copies of the frozen GEMM weights (n16 values), or NULL
    size_t n16;
    int w16_mapped;     // w16 is the node-wide bf16 image, mapped read-only
    ast_acts a;
    float *arena;       // one allocation behind every ast_acts field
    size_t arena_floats;
    size_t kept_floats;  // of which per-layer slabs kept for the backward
} ast_model;

// Builds the parameter table and the activation arena (method resolved here).
int ast_model_init(ast_model *m, const ast_config *cfg, const ast_method *method, int max_batch,
                   petal_err *err);
// The same with one encoder layer's worth of gradient memory that every layer
// shares: the gradients of layer l live only until on_layer(ctx, l) returns
// (which must consume them: train_backward_step applies AdamW there). For training;
// full fine-tuning then holds its weights, two moments and one layer of gradients.
int ast_model_init_layerwise(ast_model *m, const ast_config *cfg, const ast_method *method,
                             int max_batch, petal_err *err);
void ast_model_free(ast_model *m);
// Parameter counts as `petal model params` prints them: trainable (rows that
// train, plus inert rows the reference counts: see param_row.inert), total
// (every row, BatchNorm buffers included), and the paper's way (arXiv 2312.03694
// Table 1): trainable without the classifier and the final LayerNorm, except
// that linear probing, which trains nothing else, counts them, and BitFit
// counts the final LayerNorm's bias (one of its biases).
void ast_param_counts(const ast_model *m, size_t *trainable, size_t *paper, size_t *total);
// Seeded initialisation of every tensor by its row's rule: HF's for the
// backbone (N(0, 0.02) truncated, biases 0, LayerNorm (1, 0)), docs/METHODS.md
// for the methods' own tensors (neutral: the model starts equal to the backbone).
// skip_backbone: leave the backbone rows to a backbone file (nothing else changes).
void ast_init_weights(ast_model *m, uint64_t seed, int skip_backbone);
// model.dtype bf16: holds the frozen encoder GEMM weights (query/key/value,
// output, fc1, fc2 of layers where they do not train) as bf16 copies and runs
// their GEMMs on bf16 inputs with float32 accumulation; what trains and the
// optimizer state stay float32. Call once the weights are final (after
// backbone_load). With share_dir and a backbone mapped from its node-wide
// image, the bf16 copy is a node-wide image too and the float32 pages of those
// weights are released (core/bf16.c); otherwise it is private (and warn, when
// non-NULL, says why sharing failed, or is empty). PETAL_EINPUT on a CPU
// without AVX512-BF16 / AMX-BF16, or with the OpenBLAS GEMM engine.
// After it, those float32 weights must not change (LoRA merge, loading).
int ast_model_use_bf16(ast_model *m, const char *share_dir, char *warn, size_t nwarn,
                       petal_err *err);
void ast_model_free_bf16(ast_model *m);
// Tests: make ast_model_use_bf16 act as on a CPU without bf16 instructions.
extern int bf16_force_unsupported;
// Folds every LoRA update into its frozen projection (W += s B A, for export
// as a plain backbone) and zeroes the LoRA up projections, so the model
// computes the same function with the LoRA branch contributing nothing.
void ast_lora_merge(ast_model *m);
// fbank (B, frames, F). Returns the mean cross-entropy when labels is given
// (and counts correct predictions into *correct if non-NULL), else 0.
// Keeps what ast_backward needs (only for layers the backward visits) unless
// m->training is 0.
double ast_forward(ast_model *m, const float *fbank, const int *labels, int B, int *correct);
// The same forward keeping nothing per layer (evaluation, prediction): the
// same logits, bit for bit. BatchNorm still follows m->training.
double ast_infer(ast_model *m, const float *fbank, const int *labels, int B, int *correct);
// Linear-probe fast path: the encoder output (B, T, C) of fbank into enc
// (nothing kept), and a forward of the final LayerNorm + head from such an
// output that ast_backward can follow. Only for methods where nothing below the
// final LayerNorm trains (bw_floor == 2L); same logits and gradients, bit for bit.
void ast_encode(ast_model *m, float *enc, const float *fbank, int B);
double ast_forward_encoded(ast_model *m, const float *enc, const int *labels, int B,
                           int *correct);
// Gradients of the last forward's loss into params.grad (zeroed first),
// calling m->on_layer after each encoder layer.
void ast_backward(ast_model *m, const int *labels, int B);
#endif
