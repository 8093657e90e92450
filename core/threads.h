// Thread placement: one setting for OpenBLAS and petal's own OpenMP loops, so
// that k processes x threads = cores on a node.
#ifndef PETAL_THREADS_H
#define PETAL_THREADS_H
// SLURM_CPUS_PER_TASK when set, else the CPUs this process may run on.
int petal_threads_default(void);
// Sets OpenBLAS and OpenMP thread counts (n <= 0: the default).
void petal_set_threads(int n);
#endif
