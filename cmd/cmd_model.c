// `petal model params`: trainable and total parameter counts of a method config.
// `petal model import`: a HuggingFace AST checkpoint -> a backbone file.
// `petal model init`: a randomly initialised backbone file.
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/ast.h"
#include "core/backbone.h"

static const char usage[] =
    "usage: petal model params [options]\n"
    "       petal model import --hf DIR --out FILE.h5 [--frames T]\n"
    "       petal model init --size tiny|small|base --out FILE.h5 [--frames T] [--seed S]\n"
    "                        [--classes K]\n"
    "params: prints trainable and total parameter counts, the trainable percentage and\n"
    "  paper=, the count as arXiv 2312.03694 reports it (without the classifier and\n"
    "  the final LayerNorm; linear probing counts both, BitFit the final LN bias).\n"
    MODEL_OPTS_HELP
    "  --list                   also list every tensor with its shape and flag\n"
    "import: reads DIR/config.json and DIR/model.safetensors (ASTModel or\n"
    "  ASTForAudioClassification) and writes a backbone file (README \"Backbones\").\n"
    "  --frames T               input frames; position embeddings are re-gridded\n"
    "                           along time when T differs from max_length\n"
    "init: writes a randomly initialised backbone (HF's initialisation, seeded).\n"
    "  --size tiny|small|base   (default base)\n"
    "  --frames T               input frames (default 1024)\n"
    "  --seed S                 (default 1)\n"
    "  --classes K              also a random classifier (LayerNorm + Linear) of K classes\n";

static int is_help(const char *s) { return !strcmp(s, "--help") || !strcmp(s, "-h"); }

static int model_import(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    int frames = 0;
    args a = {argc, argv, 2, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        if (is_help(argv[a.i])) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_flag(&a, "--hf", &dir) || args_flag(&a, "--out", &out) ||
            args_int(&a, "--frames", &frames, 1, 100000))
            continue;
        args_unknown(&a, "model import");
    }
    if (a.bad) return 2;
    if (!dir || !out) {
        fprintf(stderr, "petal model import: --hf DIR and --out FILE are required\n");
        return 2;
    }
    petal_err err;
    ast_model m;
    char **labels = NULL;
    int head = 0;
    if (backbone_import_hf(&m, &head, &labels, dir, frames, &err)) {
        fprintf(stderr, "petal model import: %s\n", err.msg);
        return 2;
    }
    int st = backbone_save(out, &m, head, labels, &err);
    if (st) {
        fprintf(stderr, "petal model import: %s\n", err.msg);
    } else {
        const ast_config *c = &m.cfg;
        printf("imported %s: C=%d L=%d NH=%d MLP=%d F=%d frames=%d tokens=%d", dir, c->C, c->L,
               c->NH, c->MLP, c->F, c->frames, ast_tokens(c));
        if (head) printf(" classifier K=%d labels=%s", c->K, labels ? "id2label" : "none");
        printf(" -> %s\n", out);
    }
    backbone_labels_free(labels, m.cfg.K);
    ast_model_free(&m);
    return st;
}

static int model_init(int argc, char **argv) {
    const char *size = "base", *out = NULL;
    int frames = 1024, seed = 1, classes = 0;
    args a = {argc, argv, 2, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        if (is_help(argv[a.i])) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_flag(&a, "--size", &size) || args_flag(&a, "--out", &out) ||
            args_int(&a, "--frames", &frames, 16, 100000) ||
            args_int(&a, "--seed", &seed, 0, 2147483647) ||
            args_int(&a, "--classes", &classes, 2, 100000))
            continue;
        args_unknown(&a, "model init");
    }
    if (a.bad) return 2;
    if (!out) {
        fprintf(stderr, "petal model init: --out FILE is required\n");
        return 2;
    }
    petal_err err;
    ast_config cfg;
    ast_method meth;
    ast_model m;
    if (ast_config_preset(&cfg, size, frames, classes ? classes : 2, &err) ||
        ast_method_parse(&meth, "linear", &err)) {
        fprintf(stderr, "petal model init: %s\n", err.msg);
        return 2;
    }
    if (classes) {  // the HF classifier layout: LayerNorm + Linear on the CLS/distillation mean
        cfg.head_ln = 1;
        cfg.pool = POOL_CLS_DIST;
    }
    if (ast_model_init(&m, &cfg, &meth, 1, &err)) {
        fprintf(stderr, "petal model init: %s\n", err.msg);
        return 2;
    }
    ast_init_weights(&m, (uint64_t)seed, 0);
    int st = backbone_save(out, &m, classes > 0, NULL, &err);
    if (st) fprintf(stderr, "petal model init: %s\n", err.msg);
    else
        printf("initialised %s backbone: C=%d L=%d NH=%d MLP=%d F=%d frames=%d seed=%d%s -> %s\n",
               size, cfg.C, cfg.L, cfg.NH, cfg.MLP, cfg.F, cfg.frames, seed,
               classes ? " with a classifier" : "", out);
    ast_model_free(&m);
    return st;
}

int cmd_model(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "import")) return model_import(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "init")) return model_init(argc, argv);
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
    size_t tr, paper, all;
    ast_param_counts(&m, &tr, &paper, &all);
    printf("method=%s trainable=%zu total=%zu percent=%.4f paper=%zu\n", ast_method_name(&meth),
           tr, all, 100.0 * (double)tr / (double)all, paper);
    ast_model_free(&m);
    return 0;
}
