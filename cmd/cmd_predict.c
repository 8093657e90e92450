// `petal predict`: the classes a backbone's classifier gives audio files.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/backbone.h"
#include "core/fbank.h"
#include "core/predict.h"
#include "core/threads.h"

static const char usage[] =
    "usage: petal predict --backbone FILE.h5 [--top K] [--threads N] AUDIO...\n"
    "Classifies each audio file with the backbone file's classifier (e.g. an imported\n"
    "ASTForAudioClassification): 16 kHz mono, fbank padded or cut to the backbone's\n"
    "frames, forward in eval mode. Prints one line per class, best first:\n"
    "  FILE<TAB>rank<TAB>label<TAB>logit<TAB>sigmoid(logit)\n"
    "(AudioSet classifiers are multi-label: each score is that class's own probability.)\n"
    "  --top K       classes per file (default 5; at most the number of classes)\n"
    "  --threads N   OpenBLAS / OpenMP threads (default: SLURM_CPUS_PER_TASK or all)\n"
    "Exit 2 if any file could not be read (the others are still classified).\n";

// Labels go between tabs: tabs and newlines inside them become spaces.
static void print_field(const char *s) {
    for (; *s; s++) putchar(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s);
}

int cmd_predict(int argc, char **argv) {
    const char *bpath = NULL;
    int top = 5, threads = 0, nfiles = 0;
    const char **files = petal_calloc((size_t)argc, sizeof *files);
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        const char *s = argv[a.i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(usage, stdout);
            free(files);
            return 0;
        }
        if (args_flag(&a, "--backbone", &bpath) || args_int(&a, "--top", &top, 1, 1000000) ||
            args_int(&a, "--threads", &threads, 0, 4096))
            continue;
        if (s[0] == '-' && s[1]) args_unknown(&a, "predict");
        else files[nfiles++] = s;
    }
    if (!a.bad && (!bpath || !nfiles)) {
        fputs(usage, stderr);
        a.bad = 1;
    }
    if (a.bad) {
        free(files);
        return 2;
    }
    petal_set_threads(threads);
    petal_err err;
    ast_config cfg;
    ast_method meth;
    ast_model m;
    char **labels = NULL;
    if (backbone_read_config(&cfg, &labels, bpath, &err)) {
        fprintf(stderr, "petal predict: %s\n", err.msg);
        free(files);
        return 2;
    }
    if (!cfg.K) {
        fprintf(stderr, "petal predict: %s: no classifier in this backbone file (import an "
                "ASTForAudioClassification checkpoint)\n", bpath);
        free(files);
        return 2;
    }
    if (ast_method_parse(&meth, "linear", &err) || ast_model_init(&m, &cfg, &meth, 1, &err) ||
        backbone_load(&m, bpath, 1, &err)) {
        fprintf(stderr, "petal predict: %s\n", err.msg);
        backbone_labels_free(labels, cfg.K);
        free(files);
        return 2;
    }
    fbank_config fc = fbank_config_ast();
    fc.mel_bins = cfg.F;
    fc.max_length = cfg.frames;
    fbank_plan *plan = fbank_plan_create(&fc, &err);
    if (!plan) {
        fprintf(stderr, "petal predict: %s\n", err.msg);
        ast_model_free(&m);
        backbone_labels_free(labels, cfg.K);
        free(files);
        return 2;
    }
    int K = cfg.K, k = top < K ? top : K, failed = 0;
    float *logits = petal_malloc((size_t)K * sizeof *logits);
    int *idx = petal_malloc((size_t)K * sizeof *idx);
    for (int f = 0; f < nfiles; f++) {
        if (predict_file(logits, &m, plan, files[f], &err)) {
            fprintf(stderr, "petal predict: %s\n", err.msg);
            failed++;
            continue;
        }
        predict_topk(idx, k, logits, K);
        for (int r = 0; r < k; r++) {
            int c = idx[r];
            double z = logits[c];
            print_field(files[f]);
            printf("\t%d\t", r + 1);
            if (labels) print_field(labels[c]);
            else printf("class_%d", c);
            printf("\t%.6f\t%.6f\n", z, 1.0 / (1.0 + exp(-z)));
        }
        fflush(stdout);
    }
    free(logits);
    free(idx);
    fbank_plan_destroy(plan);
    ast_model_free(&m);
    backbone_labels_free(labels, K);
    free(files);
    return failed ? 2 : 0;
}
