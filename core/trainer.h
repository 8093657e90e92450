// The trainer: one fold of a trial (core/trial.h is the level above, a step
// the level below). Trains with the cosine schedule per step, validates every
// epoch, keeps a copy of the best-validation state, tests that copy. It is a
// resumable state machine: a checkpoint (core/checkpoint.h) after every epoch
// (and on a stop request, mid-epoch) holds everything the rest of the run
// depends on, so a resumed fold ends bit-identical to an uninterrupted one.
#ifndef PETAL_TRAINER_H
#define PETAL_TRAINER_H
#include <signal.h>

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
} trainer_config;

// One epoch of the history (stored as 6 doubles per epoch in checkpoints).
typedef struct {
    double train_loss, train_acc, valid_loss, valid_acc, lr, seconds;
} epoch_record;

typedef struct {
    trainer_config tc;
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
    int diverged;  // a NaN/Inf loss or gradient stopped it (trainer_run returned PETAL_EFAIL)
    double test_acc, test_loss;
    // stop requests: *stop set (by a signal handler) or stop_at_step reached
    volatile sig_atomic_t *stop;
    long stop_at_step;  // -1: never
    int stop_at_epoch;  // stop (checkpointed) at the end of this epoch; -1: never
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
    // progress hook: called after every epoch's validation (NULL: none)
    void (*on_epoch)(void *ctx, int epoch, const epoch_record *e);  // epoch 1-based
    void *ctx;
} trainer;

// Encoder outputs kept for the fast path are capped at this many bytes.
#define TRAINER_FAST_BYTES ((size_t)4 << 30)

// Builds the model (random init from tc->seed, then the backbone's rows from
// `backbone` when non-NULL), the optimizer and the first epoch's order.
// A backbone-sharing problem that falls back to a private copy is not an
// error: its message lands in *warn (msg[0] stays 0 otherwise).
int trainer_init(trainer *t, const ast_config *cfg, const ast_method *meth,
                 const trainer_config *tc, const feature_set *train, const feature_set *valid,
                 const feature_set *test, const char *backbone, petal_err *warn, petal_err *err);
// Runs to the end (or to a stop request). With ckpt non-NULL, writes the
// checkpoint after every epoch and when stopping; config_text identifies the
// trial in it. Returns PETAL_OK when done, PETAL_STOPPED after a stop request
// (checkpoint written), PETAL_EFAIL when the fold diverges (NaN/Inf loss or
// gradient; err names the epoch and step) or a checkpoint cannot be written.
int trainer_run(trainer *t, const char *ckpt, const char *config_text, petal_err *err);
void trainer_free(trainer *t);

typedef struct {
    double loss;  // mean over examples
    double acc;   // fraction correct
    double seconds;
} eval_stats;
// Forward only (BatchNorm on running statistics), in batches of the model's Bm.
void evaluate(eval_stats *out, ast_model *m, const feature_set *data);
#endif
