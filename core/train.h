// In-memory feature sets, evaluation over one, and learnable synthetic
// features. The trainer (core/trial.h) builds on these.
#ifndef PETAL_TRAIN_H
#define PETAL_TRAIN_H
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

// Forward only (BatchNorm on running statistics), in batches of the model's Bm.
void evaluate(epoch_stats *out, ast_model *m, const feature_set *data);

// A learnable synthetic set for smoke runs and benchmarks: class k lifts a band
// of mel bins and a rhythm of frames above N(0, 1) noise. x (n, frames, F), y (n).
void synthetic_features(float *x, int *y, int n, int frames, int F, int K, uint64_t seed);
#endif
