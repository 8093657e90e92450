// A trial's data: the train / valid / test features of one fold of a dataset,
// through the shared feature cache (one fbank extraction per file, shared by
// every trial and rank), with the few-shot subset of the training split.
#ifndef PETAL_FEATURES_H
#define PETAL_FEATURES_H
#include <stdio.h>

#include "core/train.h"
#include "core/trial.h"

typedef struct {
    feature_set split[3];  // train, valid (n 0 without a valid set), test; owned
    int K;                 // classes
    char **classes;        // (K) class names; owned
    int n_folds;           // folds of the dataset's protocol (1 for fixed splits)
    int F, frames;         // feature shape
} trial_data;

// Loads fold `fold` (1-based) of ts's dataset. Progress lines go to notes.
// Errors name the dataset file or audio file at fault.
int trial_data_load(trial_data *d, const trial_settings *ts, int fold, const petal_notes *notes,
                    petal_err *err);
// Folds of ts's dataset protocol without loading features (1 for fixed splits).
int trial_data_folds(int *n_folds, const trial_settings *ts, petal_err *err);
void trial_data_free(trial_data *d);
// Whether ts's feature cache folder (features.cache) can serve its trials
// without failing: it can be written or created, or it already holds the
// features file of ts's settings (a cache built before and shared read-only).
// PETAL_EINPUT naming the folder and why otherwise; synthetic data has none.
int trial_cache_usable(const trial_settings *ts, petal_err *err);
#endif
