// petal's version, the commit it was built from, and the versions of the
// libraries it runs with (as loaded, not as compiled against where the library
// can say): for `petal --version` and every results store's provenance.
#ifndef PETAL_VERSION_H
#define PETAL_VERSION_H
#include <stddef.h>

#define PETAL_VERSION "0.4.0"

// "0.4.0 (git 1a2b3c4)".
const char *petal_version(void);
// One line per library: "OpenBLAS 0.3.21 ...", "HDF5 1.10.8", ... (MPI is added
// by callers that link it: the core has no MPI).
void petal_library_versions(char *out, size_t n);
#endif
