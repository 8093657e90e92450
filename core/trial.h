// A trial: the top level of the training core (trial -> trainer -> step).
// Settings in (a flat config, core/config.h, checked against the settings
// table, core/settings.h), a record out: every fold asked for, each through
// the trainer (core/trainer.h), with checkpoints and exact resume when given
// a folder. No signals, no printing, no exit: a stop flag, progress hooks and
// notes connect it to its caller (`petal train`, the sweep's trials).
#ifndef PETAL_TRIAL_H
#define PETAL_TRIAL_H
#include <signal.h>

#include "core/ast.h"
#include "core/config.h"
#include "core/settings.h"
#include "core/specaug.h"
#include "core/trainer.h"

// A trial's settings resolved from a flat config: dataset, features, model,
// method, recipe. Unset keys take the reference recipe's defaults for the
// dataset and method (docs/RECIPE in the README).
#define TRIAL_PATH_MAX 4096
typedef struct {
    char layout[16];  // dataset.layout (dataset_layout_parse gives the loader)
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
    int bf16;  // model.dtype bf16: frozen backbone GEMM weights held in bf16
    ast_method method;
    int epochs, batch;
    float lr, weight_decay;
    uint64_t seed;
    int specaug;
    specaug_config aug;
    int threads;
    int drill;             // index of drill's choices (0 none); run by the sweep's worker
    double drill_seconds;
} trial_settings;

// Resolves kv into ts through the table. Unknown keys and bad values fail with
// the entry's file:line:column (or "--set") and the key.
int trial_settings_resolve(trial_settings *ts, const config_kv *kv, petal_err *err);

// A trial's model: the backbone file's architecture at the trial's frames, or a
// random backbone of model.size; K classes.
int trial_model_config(ast_config *cfg, const trial_settings *ts, int K, petal_err *err);

typedef enum { TRIAL_DONE = 0, TRIAL_STOPPED, TRIAL_DIVERGED, TRIAL_FAILED } trial_status;
// "done", "stopped", "diverged", "failed".
const char *trial_status_name(trial_status s);

// One fold of a trial, as the results store keeps it.
typedef struct {
    int fold;
    trial_status status;
    char error[1024];  // why it did not finish (status != TRIAL_DONE)
    int best_epoch;   // 1-based epoch whose state was tested (0 when none)
    int epochs;       // epochs run (entries of history)
    double best_valid_acc, test_acc, test_loss, seconds;
    epoch_record *history;  // (epochs)
} fold_record;

// What a trial gives back: per fold and over folds.
typedef struct {
    trial_status status;  // the worst of its folds (failed > diverged > stopped > done)
    char error[1024];     // the first failure's message
    int n_folds;
    fold_record *folds;             // (n_folds) in fold order
    double test_acc_mean, test_acc_std;  // over folds (sample std; 0 for one fold)
    double best_valid_acc_mean;
    double seconds;                 // wall clock of this run (resumed work excluded)
    size_t trainable, total;        // parameter counts
    char label[128];                // the resolved method (ast_method_label)
    double peak_rss_mib;            // the process's peak resident memory
} trial_record;
// Frees the folds and their histories (the scalars stay readable).
void trial_record_free(trial_record *r);

typedef struct {
    const char *ckpt_dir;       // fold<k>.h5 checkpoints (resume from them); NULL: none
    const char *save_backbone;  // at the end, the best state as a backbone file (one fold;
                                // full, linear, BitFit, LoRA merged); NULL: none
    const char *share_dir;      // node-wide backbone images; NULL: a private copy
    volatile sig_atomic_t *stop;  // set (by the caller's signal handler): checkpoint and stop
    long stop_after_steps;      // > 0: stop as if *stop were set after this many steps
    int stop_after_epochs;      // > 0: stop (checkpointed) once this many epochs are done
    // hooks (each may be NULL): after every epoch's validation; when a fold ends
    void (*on_epoch)(void *ctx, int fold, int epoch, const epoch_record *e);
    void (*on_fold)(void *ctx, const fold_record *f);
    void *ctx;
    petal_notes notes;  // progress lines (data, resume) and warnings
} trial_opts;

// Runs (or resumes) the trial kv describes. Fills rec whatever happens (free it
// with trial_record_free). Returns PETAL_OK when every fold finished,
// PETAL_EINPUT for bad settings or data (err names the key or file),
// PETAL_EFAIL when a fold diverged or failed, PETAL_STOPPED after a stop
// request (checkpoints written when ckpt_dir is set).
int trial_run(trial_record *rec, const config_kv *kv, const trial_opts *opt, petal_err *err);
#endif
