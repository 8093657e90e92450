// In-memory feature sets, the optimizer step, and learnable synthetic
// features. The trainer (core/trainer.h) builds on these.
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

// The optimizer step after a training forward: the backward, with AdamW
// (started at lr) applied to each encoder layer as soon as its gradients are
// final, then to the rows outside the layers; results equal ast_backward then
// adamw_step. Returns 0, or -1 when a gradient was NaN or Inf (the trial has
// diverged: the part holding it was updated with it, later parts were not).
int train_backward_step(ast_model *m, adamw_state *opt, float lr, const int *labels, int B);

// A learnable synthetic set for smoke runs and benchmarks: class k lifts a band
// of mel bins and a rhythm of frames above N(0, 1) noise. x (n, frames, F), y (n).
void synthetic_features(float *x, int *y, int n, int frames, int F, int K, uint64_t seed);
#endif
