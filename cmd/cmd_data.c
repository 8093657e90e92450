// `petal data`: the front end (fbank, in cmd_fbank.c), synthetic corpora
// (synth, in cmd_synth.c) and dataset inspection (info).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/dataset.h"

static void data_usage(FILE *f) {
    fprintf(f,
            "usage: petal data <command> ...\n"
            "  fbank   compute fbank features of audio files\n"
            "  synth   generate small corpora in the real layouts (petal data synth --help)\n"
            "  info    load a corpus and print classes and split sizes:\n"
            "          petal data info <esc50|us8k|gsc|fsc|folder> ROOT [--fold K]\n"
            "                          [--few-shot K [--seed S] [--first-k]] [--split-seed S]\n");
}

static int parse_u64(unsigned long long *v, const char *s) {
    char *end;
    *v = strtoull(s, &end, 10);
    return end != s && !*end;
}

// Prints the classes, per-class counts of every split for the chosen fold (all
// folds' sizes for fold datasets), and optionally a few-shot draw.
static int cmd_data_info(int argc, char **argv) {
    if (argc < 3 || !strcmp(argv[1], "--help")) {
        data_usage(argc < 3 ? stderr : stdout);
        return argc < 3 ? 2 : 0;
    }
    int layout = dataset_layout_parse(argv[1]);
    if (layout < 0) {
        fprintf(stderr, "petal data info: unknown layout '%s' (esc50, us8k, gsc, fsc, folder)\n", argv[1]);
        return 2;
    }
    const char *root = argv[2];
    unsigned long long fold = 1, shots = 0, seed = 0, split_seed = 0;
    int first_k = 0;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--first-k")) {
            first_k = 1;
            continue;
        }
        unsigned long long *dst = !strcmp(a, "--fold")         ? &fold
                                  : !strcmp(a, "--few-shot")   ? &shots
                                  : !strcmp(a, "--seed")       ? &seed
                                  : !strcmp(a, "--split-seed") ? &split_seed
                                                               : NULL;
        if (!dst || i + 1 >= argc || !parse_u64(dst, argv[i + 1])) {
            fprintf(stderr, "petal data info: bad option '%s'\n", a);
            data_usage(stderr);
            return 2;
        }
        i++;
    }
    petal_err err = {{0}};
    dataset ds;
    int st = dataset_load(&ds, layout, root, split_seed, &err);
    if (st) {
        fprintf(stderr, "petal data info: %s\n", err.msg);
        return st;
    }
    printf("%s: %s, %d items, %d classes, %d fold%s\n", dataset_layout_name(layout), ds.base, ds.N,
           ds.K, ds.n_folds, ds.n_folds > 1 ? "s" : "");
    int *idx = petal_malloc((size_t)(ds.N ? ds.N : 1) * sizeof *idx);
    if (ds.n_folds > 1) {
        printf("fold  train valid  test   (test fold k; esc50 validates on fold k mod 5 + 1)\n");
        for (int f = 1; f <= ds.n_folds; f++) {
            int n[DATASET_NSPLITS];
            for (int s = 0; s < DATASET_NSPLITS; s++) dataset_split(idx, &n[s], &ds, s, f, &err);
            printf("%4d %6d %5d %5d\n", f, n[0], n[1], n[2]);
        }
    }
    // Per-class counts for the chosen fold.
    int *cnt = petal_calloc((size_t)ds.K * DATASET_NSPLITS, sizeof *cnt);
    int total[DATASET_NSPLITS];
    for (int s = 0; s < DATASET_NSPLITS && !st; s++) {
        st = dataset_split(idx, &total[s], &ds, s, (int)fold, &err);
        for (int j = 0; j < total[s]; j++) cnt[ds.items[idx[j]].label * DATASET_NSPLITS + s]++;
    }
    if (st) {
        fprintf(stderr, "petal data info: %s\n", err.msg);
    } else {
        printf("fold %llu: train %d, valid %d, test %d\n", fold, total[0], total[1], total[2]);
        printf("label  train valid  test  class\n");
        for (int c = 0; c < ds.K; c++)
            printf("%5d %6d %5d %5d  %s\n", c, cnt[c * 3], cnt[c * 3 + 1], cnt[c * 3 + 2], ds.classes[c]);
    }
    if (!st && shots) {
        int n;
        dataset_split(idx, &n, &ds, DATASET_TRAIN, (int)fold, &err);
        int *pick = petal_malloc((size_t)(n ? n : 1) * sizeof *pick);
        int *counts = petal_malloc((size_t)(ds.K ? ds.K : 1) * sizeof *counts);
        int m = dataset_fewshot(pick, counts, &ds, idx, n, (int)shots, seed,
                                first_k ? FEWSHOT_FIRST : FEWSHOT_UNIFORM);
        printf("few-shot k=%llu (%s, seed %llu): %d train items\n", shots,
               first_k ? "first k" : "uniform", seed, m);
        char msg[2048];
        if (dataset_fewshot_short(msg, sizeof msg, &ds, counts, (int)shots))
            printf("classes with fewer than %llu train items (all taken): %s\n", shots, msg);
        for (int j = 0; j < m; j++) printf("  %s\t%s\n", ds.classes[ds.items[pick[j]].label], ds.items[pick[j]].rel);
        free(pick);
        free(counts);
    }
    free(cnt);
    free(idx);
    dataset_free(&ds);
    return st;
}

int cmd_data(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "fbank")) return cmd_data_fbank(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "synth")) return cmd_data_synth(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "info")) return cmd_data_info(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        data_usage(stdout);
        return 0;
    }
    data_usage(stderr);
    return 2;
}
