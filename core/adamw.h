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
    float *m, *v;  // (ngrad) first and second moments, laid out like the grad buffer
    size_t n;
    long step;     // optimizer steps taken
} adamw_state;

void adamw_init(adamw_state *s, const adamw_config *cfg, const param_table *t);
void adamw_free(adamw_state *s);
// One update of every trainable row with learning rate lr (from the schedule).
void adamw_step(adamw_state *s, param_table *t, float lr);
// Cosine annealing to 0 over total steps: lr at step (0-based).
float cosine_lr(float base_lr, long step, long total_steps);
#endif
