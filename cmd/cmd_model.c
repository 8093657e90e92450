// `petal model params`: trainable and total parameter counts of a method config.
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/ast.h"

static const char usage[] =
    "usage: petal model params [options]\n"
    "Prints trainable and total parameter counts and the trainable percentage.\n"
    MODEL_OPTS_HELP
    "  --list                   also list every tensor with its shape and flag\n";

int cmd_model(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "params")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            fputs(usage, stdout);
            return 0;
        }
        fputs(usage, stderr);
        return 2;
    }
    model_opts mo = {.size = "base", .method = "full", .pool = "all", .frames = 100, .classes = 35};
    int list = 0;
    args a = {argc, argv, 2, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        if (!strcmp(argv[a.i], "--help") || !strcmp(argv[a.i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_model(&a, &mo) || args_switch(&a, "--list", &list)) continue;
        args_unknown(&a, "model params");
    }
    if (a.bad) return 2;
    petal_err err;
    ast_config cfg;
    ast_method meth;
    ast_model m;
    if (model_opts_resolve(&cfg, &meth, &mo, &err) || ast_model_init(&m, &cfg, &meth, 1, &err)) {
        fprintf(stderr, "petal model params: %s\n", err.msg);
        return 2;
    }
    if (list) {
        for (int i = 0; i < m.params.nrows; i++) {
            char shape[64];
            param_shape_str(shape, sizeof shape, &m.params.rows[i]);
            printf("%-60s %-18s %s\n", m.params.rows[i].name, shape,
                   m.params.rows[i].trainable ? "trainable" : "frozen");
        }
    }
    size_t tr = param_count(&m.params, 1), all = param_count(&m.params, 0);
    printf("method=%s trainable=%zu total=%zu percent=%.4f\n", ast_method_name(&meth), tr, all,
           100.0 * (double)tr / (double)all);
    ast_model_free(&m);
    return 0;
}
