// `petal --version` / `petal version`: petal's version and commit, and the
// libraries it runs with as loaded (Open MPI's too: MPI_Get_library_version
// may be called before MPI_Init).
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/version.h"

int cmd_version(int argc, char **argv) {
    (void)argc, (void)argv;
    char libs[4096], mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    petal_library_versions(libs, sizeof libs);
    if (MPI_Get_library_version(mpi, &len) != MPI_SUCCESS) snprintf(mpi, sizeof mpi, "MPI (unknown version)");
    mpi[strcspn(mpi, "\n")] = 0;  // Open MPI: "Open MPI v4.1.4, package: ..., ident: ..., repo rev: ..."
    char *cut = strstr(mpi, ", package:");
    if (cut) *cut = 0;
    printf("petal %s\n%s%s\n", petal_version(), libs, mpi);
    return 0;
}
