// Trials in a child process, the runner: whatever a trial does (segfault,
// abort, out-of-memory kill, a hang past its timeout) the process that started
// it carries on and records why. The runner runs the core trial function
// (core/trial.h) with the trial's checkpoints in RUN/trials/<id>/, its output
// in RUN/trials/<id>/log.txt, and sends its record back through a pipe; it
// stays for the slot's next trial while trials end normally (a failed or
// killed trial gets the next one a fresh runner) and dies with its parent. The
// parent must not have entered an OpenMP parallel region (GNU OpenMP is not
// fork-safe after that): coordinators and MPI worker ranks never train.
// Used by the in-process sweep and by every MPI worker rank alike.
#ifndef PETAL_WORKER_H
#define PETAL_WORKER_H
#include <signal.h>
#include <sys/types.h>

#include "results/record.h"

typedef struct {
    const char *run;        // RUN folder
    const char *share_dir;  // node-wide backbone images (NULL: private copies)
    int threads;            // per trial (0: every CPU)
    double timeout;         // seconds a trial may run (0: no limit)
} worker_opts;

// A worker slot: its runner process and the trial it runs.
typedef struct {
    pid_t pid;          // the runner (0: none yet, or it died)
    int cmd;            // write end of the trial pipe
    int fd;             // read end of the record pipe
    int busy;           // a trial was handed to the runner, its record not yet read
    char *buf;          // what arrived so far (length, then the packed record)
    size_t n, cap;
    double started;
    int stop_sent, timed_out;
    char id[SWEEP_ID_LEN + 1];
    char log[4200];     // RUN/trials/<id>/log.txt
    int attempts;       // of the trial, this run included
} worker_child;

void worker_init(worker_child *c);
// Ends the slot's runner (waits for the trial it runs, if any: stop it first).
void worker_close(worker_child *c);
// Starts trial `id` with settings (YAML text of the trial's flat settings) in
// the slot's runner (started when there is none).
// epochs_budget > 0 stops the trial after that many epochs (early stopping);
// attempts is recorded in the record.
int worker_start(worker_child *c, const char *id, const char *settings, int epochs_budget,
                 int attempts, const worker_opts *o, petal_err *err);
// Waits up to `wait` seconds for the trial to finish. Returns 1 with rec
// filled (done, failed with the reason, or stopped) when it has, else 0.
int worker_poll(worker_child *c, results_record *rec, double wait, const worker_opts *o);
// Asks the trial to checkpoint and stop (SIGUSR1 to the runner); worker_poll
// then returns its stopped record.
void worker_stop(worker_child *c);
#endif
