// Flag parsing shared by the subcommands: `--name value` pairs. A bad value
// prints a one-line error naming the flag and makes the command exit 2.
#ifndef PETAL_ARGS_H
#define PETAL_ARGS_H
#include "core/ast.h"
#include "core/settings.h"

typedef struct {
    int argc;
    char **argv;
    int i;    // current position
    int bad;  // set once an error was printed
} args;

// True when argv[i] is `name`; then *value points at the next argument
// (a missing value is an error).
int args_flag(args *a, const char *name, const char **value);
// Same, converting the value; range-checked.
int args_int(args *a, const char *name, int *out, int lo, int hi);
int args_float(args *a, const char *name, float *out, float lo, float hi);
// A flag without a value.
int args_switch(args *a, const char *name, int *out);
// The node-wide backbone image folder (backbone_load's share_dir) from a
// --backbone-cache value (NULL when not given), else PETAL_BACKBONE_CACHE,
// else $TMPDIR/petal-backbones-<uid> (/tmp when TMPDIR is unset); NULL for "off".
const char *args_backbone_cache(const char *given);
#define BACKBONE_CACHE_HELP                                                              \
    "  --backbone-cache DIR|off  where frozen backbones are shared from, one copy per node\n" \
    "                     (default: PETAL_BACKBONE_CACHE, else $TMPDIR/petal-backbones-UID)\n"
// Prints a core warning (e.g. backbone_load's) when it has one.
void args_warn(const petal_err *warn);
// Reports argv[i] as unknown.
void args_unknown(args *a, const char *cmd);

// The model options every model-running command takes.
typedef struct {
    const char *size;    // --size tiny|small|base
    const char *method;  // --method full|linear|bitfit
    const char *pool;    // --pool all|cls|cls_dist
    int frames;          // --frames
    int classes;         // --classes
    const char *sets[32];  // --set key=value method settings, in order
    int nsets;
} model_opts;
#define MODEL_OPTS_HELP                                                        \
    "  --size tiny|small|base   model size (base = ViT-B as in the study)\n"   \
    "  --method M               full, linear, bitfit, bitfit_petal, lora,\n"      \
    "                           adapter_pfeiffer, adapter_houlsby, conformer,\n"  \
    "                           prompt_shallow, prompt_deep, prefix, dense_moa,\n" \
    "                           soft_moa; the paper's Table 1: lora_paper,\n"     \
    "                           adapter_pfeiffer_paper, adapter_houlsby_paper,\n" \
    "                           conformer_paper_speech, conformer_paper_audio,\n" \
    "                           prompt_shallow_paper, prompt_deep_paper,\n"       \
    "                           prefix_paper (docs/METHODS.md)\n"                 \
    "  --set key=value          a method setting, e.g. lora.rank=8 (repeatable)\n" \
    "  --pool P                 all, cls, cls_dist, prompts, speech, prompts+speech\n" \
    "  --frames T               input frames (max_length)\n"                   \
    "  --classes K              output classes\n"
// Consumes argv[i] if it is a model option.
int args_model(args *a, model_opts *o);
// Turns the options into a model config and method (PETAL_EINPUT on bad names).
int model_opts_resolve(ast_config *cfg, ast_method *m, const model_opts *o, petal_err *err);
#endif
