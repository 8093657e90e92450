// Thread counts for OpenBLAS and OpenMP.
#include "core/threads.h"

#include <omp.h>
#include <sched.h>
#include <stdlib.h>

void openblas_set_num_threads(int n);  // OpenBLAS has it; cblas.h of other BLASes may not

int petal_threads_default(void) {
    const char *s = getenv("SLURM_CPUS_PER_TASK");
    if (s && atoi(s) > 0) return atoi(s);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    return 1;
}

void petal_set_threads(int n) {
    if (n <= 0) n = petal_threads_default();
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}
