// The Audio Spectrogram Transformer (HF ASTModel architecture) with a
// classifier head, its parameter table, activation arena, forward and backward.
// A PETL method is a configuration of this one model: which table rows train,
// plus (in later methods) hooks on the one encoder block.
#ifndef PETAL_AST_H
#define PETAL_AST_H
#include <stdint.h>

#include "core/common.h"
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

// Which part of the backbone trains. The head and final LayerNorm always train.
typedef enum { METHOD_FULL = 0, METHOD_LINEAR, METHOD_BITFIT } ast_base;
typedef struct {
    ast_base base;
} ast_method;
int ast_method_parse(ast_method *m, const char *name, petal_err *err);
const char *ast_method_name(const ast_method *m);
// The reference recipe's learning rate for the method (REFERENCE.md).
float ast_method_default_lr(const ast_method *m);

// Pointers to one encoder layer's tensors (into the parameter or gradient
// buffer; gradient pointers are NULL for frozen tensors).
typedef struct {
    float *ln1_w, *ln1_b;  // (C)
    float *qkv_w;          // (3C, C): query, key, value weights, contiguous
    float *qkv_b;          // (3C)
    float *o_w, *o_b;      // (C, C), (C)
    float *ln2_w, *ln2_b;  // (C)
    float *fc1_w, *fc1_b;  // (MLP, C), (MLP)
    float *fc2_w, *fc2_b;  // (C, MLP), (C)
} ast_layer_tensors;

typedef struct {
    float *patch_w, *patch_b;  // (C, P*P), (C)
    float *cls, *dist;         // (C)
    float *pos;                // (T, C)
    ast_layer_tensors *layer;  // (L)
    float *lnf_w, *lnf_b;      // (C)
    float *head_w, *head_b;    // (K, C), (K)
} ast_tensors;

// Activations kept for the backward, sized for the maximum batch Bm.
typedef struct {
    float *cols;                 // (Bm, NP, P*P) im2col patches
    float *res;                  // (L+1, Bm, T, C) residual stream entering each layer; [L] = encoder out
    float *ln1, *mean1, *rstd1;  // (L, Bm, T, C), (L, Bm, T), (L, Bm, T)
    float *qkv;                  // (L, Bm, T, 3C)
    float *att;                  // (L, Bm, NH, T, T) softmax probabilities
    float *atty;                 // (L, Bm, T, C) attention output before the projection
    float *res2;                 // (L, Bm, T, C) residual stream after attention
    float *ln2, *mean2, *rstd2;  // (L, Bm, T, C), (L, Bm, T), (L, Bm, T)
    float *fc1;                  // (L, Bm, T, MLP) before GELU
    float *gel;                  // (L, Bm, T, MLP) after GELU
    float *lnf, *meanf, *rstdf;  // (Bm, T, C), (Bm, T), (Bm, T)
    float *pooled;               // (Bm, C)
    float *logits, *probs;       // (Bm, K)
    // backward scratch
    float *dres;     // (Bm, T, C) gradient of the residual stream
    float *dln;      // (Bm, T, C)
    float *datty;    // (Bm, T, C)
    float *dqkv;     // (Bm, T, 3C)
    float *dfc;      // (Bm, T, MLP)
    float *datt;     // (T, T)
    float *dpooled;  // (Bm, C)
    float *dlogits;  // (Bm, K)
} ast_acts;

typedef struct {
    ast_config cfg;
    ast_method method;
    int Bm;            // maximum batch
    int T, NP, PP;     // tokens, patches, patch pixels
    int bw_floor;      // lowest layer the backward reaches: -1 embeddings, L nothing in the encoder
    param_table params;
    ast_tensors w, g;  // weights, gradients (NULL where frozen)
    ast_acts a;
    float *arena;      // one allocation behind every ast_acts field
    size_t arena_floats;
} ast_model;

// Builds the parameter table (zeroed) and the activation arena.
int ast_model_init(ast_model *m, const ast_config *cfg, const ast_method *method, int max_batch,
                   petal_err *err);
void ast_model_free(ast_model *m);
// HF initialisation, seeded: weights ~ N(0, 0.02) truncated at 2 std, biases 0,
// LayerNorm (1, 0), CLS/distillation/position ~ N(0, 0.02) truncated.
void ast_init_weights(ast_model *m, uint64_t seed);
// fbank (B, frames, F). Returns the mean cross-entropy when labels is given
// (and counts correct predictions into *correct if non-NULL), else 0.
double ast_forward(ast_model *m, const float *fbank, const int *labels, int B, int *correct);
// Gradients of the last forward's loss into params.grad (zeroed first).
void ast_backward(ast_model *m, const int *labels, int B);
#endif
