// ==== Version and library versions ================================================
#include "core/version.h"

#include <cblas.h>
#include <fftw3.h>
#include <gsl/gsl_version.h>
#include <hdf5.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>
#include <yaml.h>

#ifndef PETAL_GIT
#define PETAL_GIT "unknown"
#endif

const char *petal_version(void) { return PETAL_VERSION " (git " PETAL_GIT ")"; }

void petal_library_versions(char *out, size_t n) {
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    unsigned xx = XXH_versionNumber();
    const char *blas = openblas_get_config();  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."
    if (!strncmp(blas, "OpenBLAS ", 9)) blas += 9;
    snprintf(out, n,
             "OpenBLAS %s\nHDF5 %u.%u.%u\nFFTW %s\nlibyaml %s\nlibsndfile %s\nlibsamplerate %s\n"
             "xxHash %u.%u.%u\nGSL %s\n",
             blas, maj, min, rel, fftwf_version, yaml_get_version_string(),
             sf_version_string(), src_get_version(), xx / 10000, xx / 100 % 100, xx % 100,
             gsl_version);
}
