// One epoch of training and one evaluation pass over an in-memory feature set.
// The trial runner (config, validation, best model, checkpoints) builds on
// these; they know nothing of files, MPI or schedulers.
#ifndef PETAL_TRAIN_H
#define PETAL_TRAIN_H
#include "core/adamw.h"
#include "core/ast.h"

// n examples of (frames, F) features with integer labels.
typedef struct {
    const float *x;  // (n, frames, F)
    const int *y;    // (n)
    int n;
} feature_set;

typedef struct {
    double loss;  // mean over examples
    double acc;   // fraction correct
    double seconds;
} epoch_stats;

// Shuffles with rng, runs ceil(n / Bm) steps (last batch smaller), the cosine
// lr per step from *step (advanced) over total_steps. Stops early with
// PETAL_EFAIL and a message when the loss or a gradient is not finite.
int train_epoch(epoch_stats *out, ast_model *m, adamw_state *opt, const feature_set *data,
                petal_rng *rng, long *step, long total_steps, petal_err *err);
// Forward only, in batches of the model's Bm.
void evaluate(epoch_stats *out, ast_model *m, const feature_set *data);

// A learnable synthetic set for smoke runs and benchmarks: class k lifts a band
// of mel bins and a rhythm of frames above N(0, 1) noise. x (n, frames, F), y (n).
void synthetic_features(float *x, int *y, int n, int frames, int F, int K, uint64_t seed);
#endif
