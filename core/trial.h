// One trial over in-memory features: train with the cosine schedule per step,
// validate every epoch, keep a copy of the best-validation weights, report the
// test accuracy of that best model. Divergence ends the trial as failed.
#ifndef PETAL_TRIAL_H
#define PETAL_TRIAL_H
#include <stdio.h>

#include "core/adamw.h"
#include "core/ast.h"
#include "core/train.h"

typedef struct {
    int epochs, batch;
    adamw_config opt;
    uint64_t seed;  // initialisation and shuffling
} trial_config;

typedef struct {
    int best_epoch;  // 1-based; the epoch whose weights were tested
    double best_valid_acc, last_valid_acc, test_acc, test_loss, seconds;
    size_t trainable, total;  // parameter counts
} trial_result;

// sets: train, valid, test. A NULL valid set (protocols without one) selects
// the last epoch. Per-epoch history lines go to `history` when non-NULL.
// Returns PETAL_EFAIL with the epoch and reason when the trial diverges.
int trial_run(trial_result *res, const ast_config *cfg, const ast_method *meth,
              const trial_config *tc, const feature_set *train, const feature_set *valid,
              const feature_set *test, FILE *history, petal_err *err);
#endif
