// `petal demo`: placeholder.
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_demo(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "petal demo: not built yet\n");
    return 2;
}
