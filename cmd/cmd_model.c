// `petal model`: placeholder.
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_model(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "petal model: not built yet\n");
    return 2;
}
