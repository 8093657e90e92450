// A worker rank: receives trials from the coordinator (rank 0), runs each in a
// child process (worker/worker.h), sends the record back; forwards stop
// requests (the coordinator's message, or SIGUSR1/SIGTERM from the launcher)
// to the child so that it checkpoints. Sleeps while it waits.
#ifndef PETAL_WORKER_RANK_H
#define PETAL_WORKER_RANK_H
#include <signal.h>

#include "worker/worker.h"

// Runs until the coordinator says quit.
void worker_rank_loop(const worker_opts *o, volatile sig_atomic_t *stop);
#endif
