// A PETL method is configuration of the one encoder block: which part of the
// backbone trains (base) plus optional hooks (LoRA, adapters, prompts, prefix,
// mixtures of adapters), any combination at once. docs/METHODS.md has the maths.
#ifndef PETAL_METHOD_H
#define PETAL_METHOD_H
#include "core/common.h"
#include "core/settings.h"

// BITFIT: the reference's BitFit (bias of every Linear and LayerNorm, the final
// LayerNorm's included; not the patch projection's; + head). BITFIT_PETAL:
// petal's earlier set, which also trains the patch projection bias and the
// final LayerNorm weight (1,536 more at ViT-B).
typedef enum { METHOD_FULL = 0, METHOD_LINEAR, METHOD_BITFIT, METHOD_BITFIT_PETAL } ast_base;

enum { LORA_Q = 1, LORA_K = 2, LORA_V = 4, LORA_O = 8 };
typedef struct {
    unsigned targets;  // LORA_* bitmask; 0 = no LoRA
    int rank;          // r (or 0 when sized by rr)
    float rr;          // reduction rate: r = round(C / rr), scaling alpha / rr
    float alpha;
    int init_paper;    // 0: reference init (A = 0), 1: LoRA paper (B = 0)
} lora_config;

typedef enum { BLOCK_BOTTLENECK = 0, BLOCK_CONFORMER } adapter_block;
typedef struct {
    int at_mhsa, at_ffn;  // sites; neither = no adapter
    adapter_block block;
    int sequential;       // else parallel
    int after;            // else before
    int residual;         // add the adapter's input to its output
    int seq_add;          // sequential-before only: also add the sublayer's input a to the
                          // part, S(a) + a (the reference's ablation code)
    int dim;              // bottleneck D (or 0 when sized by rr)
    float rr;
    int kernel;           // Conformer depthwise kernel; even k pads (k-1)/2 left, k/2 right
    int init_reference;   // the reference code's init (bottleneck: all zero; Conformer:
                          // torch's default for pw2 instead of zero)
    int norm_discarded;   // Conformer LayerNorm as the reference: its rows exist and are
                          // counted, but nothing reads them and they never learn
} adapter_config;

typedef struct {
    int tokens;  // P; 0 = no prompt
    int deep;
} prompt_config;

typedef struct {
    int tokens;  // P (even): P/2 keys and P/2 values per layer; 0 = off
} prefix_config;

typedef enum { MOA_NONE = 0, MOA_DENSE, MOA_SOFT } moa_kind;
typedef struct {
    moa_kind kind;
    int at_mhsa, at_ffn;
    int experts, slots;
    int dim;   // expert bottleneck D (or 0 when sized by rr)
    float rr;
    int init_reference;  // all-zero experts, as the reference's adapters
} moa_config;

typedef struct {
    char name[32];  // the preset it started from
    ast_base base;
    lora_config lora;
    adapter_config adapter;
    prompt_config prompt;
    prefix_config prefix;
    moa_config moa;
} ast_method;

// Named presets: full, linear, bitfit, bitfit_petal, lora, adapter_pfeiffer,
// adapter_houlsby, conformer, prompt_shallow, prompt_deep, prefix, dense_moa,
// soft_moa; and the paper's Table 1 configurations (docs/METHODS.md "Paper
// presets"): lora_paper, adapter_pfeiffer_paper, adapter_houlsby_paper,
// conformer_paper_speech (kernel 31), conformer_paper_audio (kernel 8),
// prompt_shallow_paper, prompt_deep_paper, prefix_paper.
int ast_method_parse(ast_method *m, const char *name, petal_err *err);
// Applies one method setting of the settings table (d->flags & SETTING_METHOD),
// its value already converted by setting_parse.
int ast_method_apply(ast_method *m, const setting_def *d, const setting_value *v,
                     petal_err *err);
// Sets one `key=value` (e.g. lora.targets=qkvo, adapter.rr=32, prompt.deep=1)
// through the table; PETAL_EINPUT names the key on error.
int ast_method_set(ast_method *m, const char *key, const char *value, petal_err *err);
// Checks the combination for a hidden size C and fills rank / dims from rr.
int ast_method_resolve(ast_method *m, int C, int L, petal_err *err);
// Short name of the preset the config started from (for tables).
const char *ast_method_name(const ast_method *m);
// A human label of a resolved method for tables: "LoRA r8 (q,v)", "Pfeiffer
// d32", "BitFit", "prompt deep P25", "Conformer d12 k31 (sequential, before)".
void ast_method_label(char *out, size_t n, const ast_method *m);
// The reference recipe's learning rate for the method (docs/RECIPE.md).
float ast_method_default_lr(const ast_method *m);
// LoRA scaling s (alpha / rr or alpha / r).
float ast_method_lora_scaling(const ast_method *m);
#endif
