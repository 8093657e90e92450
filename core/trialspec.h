// A trial's complete settings, resolved from a flat config (core/config.h):
// dataset, features, model, method, training recipe. Unset keys take the
// reference recipe's defaults for the dataset and method (REFERENCE.md).
//
// Keys:
//   dataset.layout  esc50 | us8k | gsc | fsc | folder | synthetic
//   dataset.root    corpus folder (or the folder holding it)
//   dataset.fold    test fold (1..n), or "all" to run every fold (default 1)
//   dataset.shots   k examples per class of the training split (0 = all)
//   dataset.fewshot uniform | first (the reference's first-k)
//   dataset.split_seed  seed of the folder layout's split without lists
//   features.frames max_length in frames   features.mel_bins (128)
//   features.cache  feature cache folder (default <root>/.petal-cache)
//   model.backbone  backbone HDF5 (petal model import / init / pretrain);
//                   without it a randomly initialised backbone of model.size
//   model.size      tiny | small | base     model.pool all | cls | ...
//   model.dtype     fp32 (default) | bf16: frozen backbone GEMM weights held in
//                   bf16, float32 accumulation (ast_model_use_bf16)
//   method          a preset (full, linear, lora, ...), then any method key
//                   (base, lora.*, adapter.*, prompt.*, prefix.*, moa.*)
//   train.epochs train.batch train.lr train.weight_decay train.seed
//   train.specaug (true/false) train.freq_mask train.time_mask train.threads
#ifndef PETAL_TRIALSPEC_H
#define PETAL_TRIALSPEC_H
#include "core/ast.h"
#include "core/config.h"
#include "core/specaug.h"

#define TRIAL_PATH_MAX 4096

typedef struct {
    char layout[16];
    char root[TRIAL_PATH_MAX];
    int fold;  // 0 = every fold
    int shots;
    int fewshot_first;
    uint64_t split_seed;
    int frames, mel_bins;
    char cache[TRIAL_PATH_MAX];
    char backbone[TRIAL_PATH_MAX];
    char size[16];
    ast_pool pool;
    int bf16;  // model.dtype bf16
    ast_method method;
    int epochs, batch;
    float lr, weight_decay;
    uint64_t seed;
    int specaug;
    specaug_config aug;
    int threads;
} trial_spec;

// Resolves kv into ts. Unknown keys and bad values fail with the entry's
// file:line:column (or "--set") and the key.
int trial_spec_resolve(trial_spec *ts, const config_kv *kv, petal_err *err);
#endif
