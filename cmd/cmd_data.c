// `petal data`: placeholder until datasets land.
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

int cmd_data(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "fbank")) return cmd_data_fbank(argc - 1, argv + 1);
    fprintf(stderr, "usage: petal data fbank ...\n");
    return 2;
}
