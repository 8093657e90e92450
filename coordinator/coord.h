// The coordinator: the one loop behind every way a sweep runs. It opens the
// store (skipping what it already holds), orders the remaining trials by
// expected cost (longest first; the FLOP estimate, corrected per method by the
// seconds finished trials took), hands them to an executor's slots, collects
// records, retries what a retry can help, writes the store, stops on request.
// Executors: local child processes (`petal sweep`) or MPI worker ranks
// (`mpirun -n N petal sweep`, coordinator/mpi.c); the loop is the same.
#ifndef PETAL_COORD_H
#define PETAL_COORD_H
#include <signal.h>
#include <stdio.h>

#include "results/store.h"
#include "sweeps/spec.h"
#include "worker/worker.h"

typedef struct executor executor;
struct executor {
    // Trials it can hold at once: slot k runs on worker k % workers; slots
    // past the workers queue a worker's next trial behind the one it runs
    // (filled only with trials measured to be short: see coord_run).
    int slots, workers;
    // Starts a trial on a free slot.
    int (*start)(executor *ex, int slot, const char *id, const char *settings, int epochs_budget,
                 int attempts, petal_err *err);
    // Waits (sleeping) up to `wait` seconds for a trial to finish: returns its
    // slot with rec filled, or -1.
    int (*wait)(executor *ex, results_record *rec, double wait);
    // Asks the trial on slot to checkpoint and stop (its record follows: a
    // queued trial not yet started comes back with status RS_PENDING).
    void (*stop)(executor *ex, int slot);
    void *ctx;
};

typedef struct {
    const char *run;
    int max_attempts;   // runs per trial in this sweep when a retry can help (crash, timeout)
    int retry_failed;   // run trials recorded as failed again
    int shard, nshards; // array task shard of nshards (nshards 0: all trials, the store's writer)
    volatile sig_atomic_t *stop;  // set by the caller's signal handler
    FILE *out;          // one line per finished trial, the summary
    int live;           // a live status line (out is a terminal)
    petal_notes notes;  // warnings (damaged records)
} coord_opts;

// Runs the spec's trials to the end. Returns PETAL_OK when every trial is done,
// PETAL_EFAIL when some failed (the store is complete), PETAL_STOPPED when a
// stop request checkpointed the trials in flight, PETAL_EINPUT for a RUN that
// cannot be used.
int coord_run(const sweep_spec *spec, executor *ex, const coord_opts *o, petal_err *err);

// The settings text a worker receives for trial i (every key but threads).
char *coord_settings_text(const sweep_trial *t);

// Expected cost of a trial in GFLOP (model FLOPs x examples x epochs): the
// order trials are handed out in until the measured pace of finished trials
// (seconds per GFLOP, per method) corrects it.
double coord_estimate(const sweep_trial *t);

// The local executor: one trial at a time in a child process on this machine
// (a trial uses every thread it is given; the sweep's parallelism is MPI's).
typedef struct {
    worker_opts wo;
    worker_child child;
} local_exec;
void local_executor(executor *ex, local_exec *le, const worker_opts *wo);
void local_executor_close(local_exec *le);  // ends its runner
#endif
