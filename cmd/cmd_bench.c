// `petal bench`: placeholder.
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "fbank")) return cmd_bench_fbank(argc - 1, argv + 1);
    (void)argc, (void)argv;
    fprintf(stderr, "petal bench: not built yet\n");
    return 2;
}
