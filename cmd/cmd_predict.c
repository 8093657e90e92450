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
#include "core/checkpoint.h"
#include "core/trial.h"

static const char usage[] =
    "usage: petal predict (--backbone FILE.h5 | --checkpoint DIR/fold1.h5) [--top K] AUDIO...\n"
    "Classifies each audio file with the backbone file's classifier (e.g. an imported\n"
    "ASTForAudioClassification): 16 kHz mono, fbank padded or cut to the backbone's\n"
    "frames, forward in eval mode. Prints one line per class, best first:\n"
    "  FILE<TAB>rank<TAB>label<TAB>logit<TAB>sigmoid(logit)\n"
    "(AudioSet classifiers are multi-label: each score is that class's own probability.)\n"
    "--checkpoint runs a trained trial instead (any method; its backbone file must still\n"
    "be where the trial read it): the best-validation state, the trial's frames and\n"
    "pooling; the score is then the softmax probability (trials are single-label).\n"
    "  --top K       classes per file (default 5; at most the number of classes)\n"
    "  --threads N   OpenBLAS / OpenMP threads (default: SLURM_CPUS_PER_TASK or all)\n"
    BACKBONE_CACHE_HELP
    "Exit 2 if any file could not be read (the others are still classified).\n";

// Labels go between tabs: tabs and newlines inside them become spaces.
static void print_field(const char *s) {
    for (; *s; s++) putchar(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s);
}

// Builds the model of a trial checkpoint: its settings (the trial's identity
// text, core/settings.h), backbone and best state.
static int model_from_checkpoint(ast_model *m, char ***labels, int *K, const char *ckpt,
                                 const char *share_dir, petal_err *err) {
    char *text = NULL;
    int st = checkpoint_read_meta(&text, K, labels, ckpt, err), finished = 1;
    config_kv kv = {0};
    trial_settings ts;
    ast_config cfg;
    petal_err warn;
    if (!st) st = config_parse_yaml(&kv, text, ckpt, err);
    if (!st) st = trial_settings_resolve(&ts, &kv, err);
    if (!st) st = trial_model_config(&cfg, &ts, *K, err);
    if (!st) st = ast_model_init(m, &cfg, &ts.method, 1, err);
    // As the trainer built it: seeded initialisation, then the backbone file's rows.
    if (!st) ast_init_weights(m, ts.seed, ts.backbone[0] != 0);
    if (!st && ts.backbone[0] && (st = backbone_load(m, ts.backbone, 0, share_dir, &warn, err)))
        ast_model_free(m);
    if (!st && ts.backbone[0]) args_warn(&warn);
    if (!st && (st = checkpoint_load_best(m, &finished, ckpt, err))) ast_model_free(m);
    if (!st && !finished)
        fprintf(stderr, "petal: %s: the trial has not finished; using its best state so far\n",
                ckpt);
    // A bf16 trial predicts as it was tested: the frozen GEMM weights in bf16.
    if (!st && ts.bf16 &&
        (st = ast_model_use_bf16(m, ts.backbone[0] ? share_dir : NULL, NULL, 0, err)))
        ast_model_free(m);
    config_free(&kv);
    free(text);
    return st;
}

int cmd_predict(int argc, char **argv) {
    const char *bpath = NULL, *cpath = NULL, *cache = NULL;
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
        if (args_flag(&a, "--backbone", &bpath) || args_flag(&a, "--checkpoint", &cpath) ||
            args_flag(&a, "--backbone-cache", &cache) ||
            args_int(&a, "--top", &top, 1, 1000000) ||
            args_int(&a, "--threads", &threads, 1, 4096))
            continue;
        if (s[0] == '-' && s[1]) args_unknown(&a, "predict");
        else files[nfiles++] = s;
    }
    if (!a.bad && (!bpath == !cpath || !nfiles)) {
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
    petal_err warn;
    char **labels = NULL;
    int K = 0, st;
    if (cpath) {
        st = model_from_checkpoint(&m, &labels, &K, cpath, args_backbone_cache(cache), &err);
    } else {
        st = backbone_read_config(&cfg, &labels, bpath, &err);
        K = cfg.K;
        if (!st && !K)
            st = petal_fail(&err, PETAL_EINPUT, "%s: no classifier in this backbone file (import "
                            "an ASTForAudioClassification checkpoint)", bpath);
        if (!st) st = ast_method_parse(&meth, "linear", &err);
        if (!st) st = ast_model_init(&m, &cfg, &meth, 1, &err);
        if (!st && (st = backbone_load(&m, bpath, 1, args_backbone_cache(cache), &warn, &err)))
            ast_model_free(&m);
        if (!st) args_warn(&warn);
    }
    if (st) {
        fprintf(stderr, "petal predict: %s\n", err.msg);
        if (cpath) checkpoint_labels_free(labels, K);
        else backbone_labels_free(labels, K);
        free(files);
        return 2;
    }
    cfg = m.cfg;
    fbank_config fc = fbank_config_ast();
    fc.mel_bins = cfg.F;
    fc.max_length = cfg.frames;
    fbank_plan *plan = fbank_plan_create(&fc, &err);
    if (!plan) {
        fprintf(stderr, "petal predict: %s\n", err.msg);
        ast_model_free(&m);
        if (cpath) checkpoint_labels_free(labels, K);
        else backbone_labels_free(labels, K);
        free(files);
        return 2;
    }
    int k = top < K ? top : K, failed = 0;
    float *logits = petal_malloc((size_t)K * sizeof *logits);
    int *idx = petal_malloc((size_t)K * sizeof *idx);
    for (int f = 0; f < nfiles; f++) {
        if (predict_file(logits, &m, plan, files[f], &err)) {
            fprintf(stderr, "petal predict: %s\n", err.msg);
            failed++;
            continue;
        }
        predict_topk(idx, k, logits, K);
        double zmax = logits[idx[0]], sum = 0.0;  // softmax for trials
        for (int c = 0; c < K; c++) sum += exp(logits[c] - zmax);
        for (int r = 0; r < k; r++) {
            int c = idx[r];
            double z = logits[c];
            double score = cpath ? exp(z - zmax) / sum : 1.0 / (1.0 + exp(-z));
            print_field(files[f]);
            printf("\t%d\t", r + 1);
            if (labels) print_field(labels[c]);
            else printf("class_%d", c);
            printf("\t%.6f\t%.6f\n", z, score);
        }
        fflush(stdout);
    }
    free(logits);
    free(idx);
    fbank_plan_destroy(plan);
    ast_model_free(&m);
    if (cpath) checkpoint_labels_free(labels, K);
    else backbone_labels_free(labels, K);
    free(files);
    return failed ? 2 : 0;
}
