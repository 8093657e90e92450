// `petal train`: placeholder.
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_train(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "petal train: not built yet\n");
    return 2;
}
