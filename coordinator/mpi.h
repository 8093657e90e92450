// A sweep over MPI ranks: rank 0 runs the coordinator loop (coordinator/coord.h)
// with every other rank as one worker (its executor slots: the trial it runs,
// and short trials queued behind it); worker ranks (worker/rank.c) run each
// trial they receive in their runner process and send its record back. Ranks
// sleep while they wait (Open MPI's blocking calls spin a core): probes with a
// back-off from 0.1 to 50 ms.
#ifndef PETAL_COORD_MPI_H
#define PETAL_COORD_MPI_H
#include "coordinator/coord.h"

// True when this process was started by an MPI launcher (mpirun, srun).
int coord_mpi_launched(void);
// This process's rank as the launcher set it in the environment (before MPI_Init).
int coord_mpi_rank_hint(void);
// Initialises MPI, runs rank 0 as the coordinator and the others as workers,
// finalises. Returns rank 0's status on rank 0 and 0 on workers.
int coord_mpi_main(const sweep_spec *spec, const coord_opts *co, const worker_opts *wo, petal_err *err);

// Message tags between the coordinator and worker ranks: a trial ("budget
// attempts id\nsettings"), a stop (the trial's id), a record (packed), the end.
enum { TAG_TRIAL = 1, TAG_STOP, TAG_RECORD, TAG_QUIT };
// Sleeps for the back-off step *us, then doubles it up to cap (microseconds).
void coord_backoff(long *us, long cap);
#endif
