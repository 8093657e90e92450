// Early stopping (a spec's `early_stop:`), decided by the coordinator alone and
// only from the trials' records, so the same records give the same decisions
// in one process, over MPI and after a kill.
//
// Rungs: epochs r_k = min_epochs * eta^k below a trial's train.epochs R (the
// maximum budget); a trial runs with epochs_budget r_0, then r_1, ..., then R,
// each run resuming from its checkpoint (the cosine schedule spans R, so the
// pieces equal one uninterrupted run bit for bit). A trial's metric at rung k
// is valid_acc at epoch r_k of its first fold's history.
//
// ASHA: a trial that stops at rung k is promoted when it ranks in the top
// floor(n_k / eta) of rung k (n_k: every trial whose history reaches r_k; ties
// by id), else paused (status paused, decision "paused", checkpoint kept). A
// paused trial is promoted as soon as a later result puts it in that top
// ("paused trials are promoted later when the rung fills"); a promotion is
// never taken back. Median: at each rung a trial continues (decision
// "continued") unless its metric is below the median of the finished trials'
// valid_acc at that epoch; then it stops for good (status paused, decision
// "stopped").
#ifndef PETAL_COORD_EARLY_H
#define PETAL_COORD_EARLY_H
#include "results/store.h"

// The rung index k when epoch is a pause point r_k < max_epochs, else -1.
int early_rung(const early_stop *es, int max_epochs, int epoch);
// The budget after `done` epochs: the first r_k > done below max_epochs, else max_epochs.
int early_budget_after(const early_stop *es, int max_epochs, int done);
// Epochs of a record's first fold (what the rungs measure).
int early_epochs(const results_record *r);

// Takes every decision the store's rows call for (rows with active[i] set;
// max_epochs[i] is trial i's train.epochs): first each trial that stopped at a
// rung without one, then the promotions of paused trials. Changed rows are
// written to their record files. *changed counts the decisions made.
int early_decide(results_store *s, const early_stop *es, const int *max_epochs, const char *active,
                 int *changed, petal_err *err);

// What trial i runs next: a budget > 0, or 0 when it does not run now
// (done, paused, stopped for good, failed).
int early_next(const results_record *row, const early_stop *es, int max_epochs);
#endif
