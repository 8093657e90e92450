// AdamW (decoupled weight decay, as torch.optim.AdamW) over the trainable rows
// of a parameter table, and the cosine learning-rate schedule per step.
#ifndef PETAL_ADAMW_H
#define PETAL_ADAMW_H
#include "core/params.h"

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} adamw_config;

// The reference recipe: betas 0.9/0.98, eps 1e-6, weight decay 0.1.
adamw_config adamw_defaults(float lr);

typedef struct {
    adamw_config cfg;
    float *m, *v;  // (nmom) first and second moments, at each row's moff
    size_t n;
    long step;     // optimizer steps taken
    // the step in progress (adamw_begin)
    float lr, bc1, bc2_sqrt;
} adamw_state;

void adamw_init(adamw_state *s, const adamw_config *cfg, const param_table *t);
void adamw_free(adamw_state *s);
// One update of every trainable row with learning rate lr (from the schedule).
void adamw_step(adamw_state *s, param_table *t, float lr);
// The same in parts: adamw_begin starts step s->step + 1 at lr, then
// adamw_apply updates the trainable rows of one encoder layer (-1: the rows
// outside the layers; PARAM_EVERY_LAYER: all), each row once per step, in
// any order: the results equal adamw_step's. With clear, the gradients it
// reads are left zero (ready for the next backward's accumulation).
// adamw_apply returns 0 if a gradient was NaN or Inf (the update is made
// regardless: the caller fails the trial), else 1.
void adamw_begin(adamw_state *s, float lr);
int adamw_apply(adamw_state *s, param_table *t, int layer, int clear);
// Cosine annealing to 0 over total steps: lr at step (0-based).
float cosine_lr(float base_lr, long step, long total_steps);
#endif
