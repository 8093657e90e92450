// Before a sweep writes anything: the paths it will need, checked up front, so
// a RUN or a feature cache that cannot be used is one clear error naming it,
// not a lock taken, a store started and every trial failing the same way.
#ifndef PETAL_PREFLIGHT_H
#define PETAL_PREFLIGHT_H
#include "core/common.h"
#include "sweeps/spec.h"

// RUN: a folder petal can write, or can create; no file in the way; its
// results.h5, when there is one, petal's and of this format (one that is
// damaged in a RUN that is petal's store is rebuilt from the records: a note).
// Each trial's data: dataset.root and model.backbone exist, and the feature
// cache folder can be written or already holds the trial's features (shared
// read-only). PETAL_EINPUT naming the path (and the spec position that set it).
// Under MPI, rank 0 checks the paths as its node sees them.
int coord_preflight(const sweep_spec *spec, const char *run, const petal_notes *notes, petal_err *err);
// The RUN part alone (`petal results check`, which rebuilds results.h5 too).
int coord_preflight_run(const char *run, const petal_notes *notes, petal_err *err);
#endif
