// Front-end subcommands: placeholder until the fbank lands.
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_data_fbank(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "petal data fbank: not built yet\n");
    return 2;
}

int cmd_bench_fbank(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "petal bench fbank: not built yet\n");
    return 2;
}
