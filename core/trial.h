// One trial: train with the cosine schedule per step, validate every epoch,
// keep a copy of the best-validation state, test that copy. The trainer is a
// resumable state machine: a checkpoint after every epoch (and on a stop
// request, mid-epoch) holds everything the rest of the run depends on, so a
// resumed trial ends bit-identical to an uninterrupted one.
#ifndef PETAL_TRIAL_H
#define PETAL_TRIAL_H
#include <signal.h>
#include <stdio.h>

#include "core/adamw.h"
#include "core/ast.h"
#include "core/specaug.h"
#include "core/train.h"

typedef struct {
    int epochs, batch;
    adamw_config opt;
    uint64_t seed;             // initialisation, shuffling, augmentation
    const specaug_config *aug; // SpecAugment on training batches; NULL = off
    const char *share_dir;     // backbone_load's node-wide image folder; NULL = private copy
    int bf16;                  // model.dtype bf16: frozen GEMM weights in bf16 (ast_model_use_bf16)
} trial_config;

typedef struct {
    double train_loss, train_acc, valid_loss, valid_acc, lr, seconds;
} epoch_record;

typedef struct {
    trial_config tc;
    ast_model m;
    adamw_state opt;
    petal_rng rng;
    const feature_set *train, *valid, *test;  // valid may be NULL (no valid set)
    // progress
    int epoch;         // epochs completed
    int pos;           // training examples of the current epoch already stepped over
    long step;         // optimizer steps taken
    long total_steps;  // of the whole trial (the cosine schedule's length)
    int *order;        // (train->n) the current epoch's example order
    double loss_sum, seconds;  // current epoch so far
    long right;
    // best-validation state (trainable rows and buffers, packed in table order)
    float *best;
    size_t nbest;
    double best_acc;
    int best_epoch;
    epoch_record *hist;  // (epochs)
    // outcome
    int done;
    double test_acc, test_loss;
    // stop requests: *stop set (by a signal handler) or stop_at_step reached
    volatile sig_atomic_t *stop;
    long stop_at_step;  // -1: never
    float *xb;          // (Bm, frames, F) batch buffer
    int *yb;            // (Bm)
    char *const *labels;  // (K) class names saved with the checkpoint, or NULL (not owned)
    // Linear-probe fast path: when nothing below the final LayerNorm trains and
    // no augmentation touches the input, every example's encoder output is
    // computed once (the first time it is needed) and later steps run only the
    // final LayerNorm and head. The same trial up to float rounding: the
    // encoder's GEMMs see the examples in other batches (BLAS results depend
    // on a matrix's row count), so last bits differ; resumes stay bit-exact.
    int fast;           // in use (decided by trainer_init; a caller may clear it)
    float *enc[3];      // (n, T, C) encoder outputs of train, valid, test; NULL until made
    float *eb;          // (Bm, T, C) a batch of them
} trainer;

// Encoder outputs kept for the fast path are capped at this many bytes.
#define TRAINER_FAST_BYTES ((size_t)4 << 30)

// Builds the model (random init from tc->seed, then the backbone's rows from
// `backbone` when non-NULL), the optimizer and the first epoch's order.
int trainer_init(trainer *t, const ast_config *cfg, const ast_method *meth,
                 const trial_config *tc, const feature_set *train, const feature_set *valid,
                 const feature_set *test, const char *backbone, petal_err *err);
// Runs to the end (or to a stop request). With ckpt non-NULL, writes the
// checkpoint after every epoch and when stopping; config_text identifies the
// trial in it. Returns PETAL_OK when done, PETAL_STOPPED after a stop request
// (checkpoint written), PETAL_EFAIL when the trial diverges (NaN/Inf loss or
// gradient; err names the epoch and step). History lines go to `history`.
int trainer_run(trainer *t, const char *ckpt, const char *config_text, FILE *history,
                petal_err *err);
// Checkpoint I/O (core/checkpoint.c). Saving is atomic: a kill at any moment
// leaves the old or the new file. Loading checks that the checkpoint belongs
// to config_text and to this model's table; mismatches are PETAL_EINPUT.
int trainer_save(const trainer *t, const char *path, const char *config_text, petal_err *err);
int trainer_load(trainer *t, const char *path, const char *config_text, petal_err *err);
// For inference from a checkpoint: its settings text, class count and names
// (*labels NULL when none were saved; free with checkpoint_labels_free), and
// the best-validation state loaded into m (built for the same settings).
int checkpoint_read_meta(char **config_text, int *K, char ***labels, const char *path,
                         petal_err *err);
void checkpoint_labels_free(char **labels, int K);
int checkpoint_load_best(ast_model *m, const char *path, petal_err *err);
void trainer_free(trainer *t);

// Convenience: init + run without checkpoints + results.
typedef struct {
    int best_epoch;  // 1-based; the epoch whose state was tested
    double best_valid_acc, last_valid_acc, test_acc, test_loss, seconds;
    size_t trainable, total;  // parameter counts
} trial_result;
int trial_run(trial_result *res, const ast_config *cfg, const ast_method *meth,
              const trial_config *tc, const feature_set *train, const feature_set *valid,
              const feature_set *test, FILE *history, petal_err *err);
#endif
