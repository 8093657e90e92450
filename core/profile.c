// ==== Op-family timing for `petal bench --profile` ==============================
// Leaf ops (one GEMM, one LayerNorm pass, one attention call, ...) add their
// wall time to a family when profiling is on; off, each probe is one branch.
#include "core/common.h"
#include "core/ops.h"

int petal_profile;
double petal_profile_s[PROF_NFAM];

const char *const petal_profile_names[PROF_NFAM] = {
    "gemm", "attention", "norm", "activation", "elementwise", "adapter", "loss", "optimizer"};

double prof_start(void) { return petal_profile ? petal_now() : 0.0; }

void prof_stop(prof_family f, double t0) {
    if (petal_profile) petal_profile_s[f] += petal_now() - t0;
}
