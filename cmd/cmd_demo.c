// `petal demo`: what the demo study (sweeps/demo.yaml, run by `make demo`
// through tools/demo.sh) needs on disk: two synthetic sound corpora in the
// ESC-50 layout (one to pretrain on, another recording of the same kinds of
// sounds as the downstream task) and a tiny AST pretrained on the first. Both
// are kept, so a second run starts at the sweep.
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/threads.h"
#include "core/trial.h"

static const char usage[] =
    "usage: petal demo [--data DIR] [--threads N] [--quick]\n"
    "Prepares the demo study's data in DIR (default demo-data): DIR/pretrain/ESC-50\n"
    "(synthetic sounds, corpus seed 1) and DIR/target/ESC-50 (the same 11 kinds of\n"
    "sound, other clips: corpus seed 2), and DIR/backbone.h5, a tiny AST (C 64, 2\n"
    "layers) pretrained on the first with full fine-tuning (ESC-50 protocol, fold 1).\n"
    "Existing parts are reused. Then run the study (make demo does all of it):\n"
    "  PETAL_DATA=DIR mpirun -n 3 petal sweep sweeps/demo.yaml --out DIR/run\n"
    "--quick: 6 clips per class, 128 frames, 2 epochs (a smoke run of the pipeline).\n";

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void print_note(void *ctx, const char *line) { fprintf(ctx, "demo: %s\n", line); }

int cmd_demo(int argc, char **argv) {
    const char *dir = "demo-data";
    int threads = 0, quick = 0;
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        const char *v;
        if (!strcmp(argv[a.i], "--help") || !strcmp(argv[a.i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_flag(&a, "--data", &v)) dir = v ? v : dir;
        else if (args_int(&a, "--threads", &threads, 1, 4096) || args_switch(&a, "--quick", &quick)) {
        } else
            args_unknown(&a, "demo");
    }
    if (a.bad) return 2;
    petal_set_threads(threads);
    double t0 = petal_now();
    char path[4300], out[4200], backbone[4200];
    petal_err err;

    // 1. Corpora (kept: a second run reuses them and their feature cache).
    if (mkdir(dir, 0777) && !exists(dir)) {
        fprintf(stderr, "petal demo: %s: cannot create the folder\n", dir);
        return 2;
    }
    const char *parts[2] = {"pretrain", "target"}, *seeds[2] = {"1", "2"};
    for (int k = 0; k < 2; k++) {
        snprintf(out, sizeof out, "%s/%s", dir, parts[k]);
        snprintf(path, sizeof path, "%s/ESC-50", out);
        if (exists(path)) continue;
        mkdir(out, 0777);
        printf("demo: generating the %s corpus in %s\n", parts[k], path);
        fflush(stdout);
        char *av[] = {"synth", "--out", out,  "--kind", "sound", "--classes", "11", "--seed",
                      (char *)seeds[k], "--per-class", quick ? "6" : "30", NULL};
        int rc = cmd_data_synth(11, av);
        if (rc) return rc;
    }

    // 2. A tiny backbone pretrained on the first corpus (ESC-50 fold 1 protocol).
    snprintf(backbone, sizeof backbone, "%s/backbone.h5", dir);
    if (exists(backbone)) {
        printf("demo: reusing the backbone %s\n", backbone);
        return 0;
    }
    printf("demo: pretraining a tiny AST on %s/pretrain/ESC-50 (full fine-tuning)\n", dir);
    fflush(stdout);
    config_kv kv = {0};
    snprintf(path, sizeof path, "%s/pretrain", dir);
    config_set(&kv, "dataset.layout", "esc50", "petal demo", 0, 0);
    config_set(&kv, "dataset.root", path, "petal demo", 0, 0);
    config_set(&kv, "model.size", "tiny", "petal demo", 0, 0);
    config_set(&kv, "method", "full", "petal demo", 0, 0);
    config_set(&kv, "train.epochs", quick ? "2" : "30", "petal demo", 0, 0);
    if (quick) config_set(&kv, "features.frames", "128", "petal demo", 0, 0);
    config_set(&kv, "train.batch", "16", "petal demo", 0, 0);
    config_set(&kv, "train.lr", "3e-3", "petal demo", 0, 0);
    trial_opts opt = {.save_backbone = backbone, .share_dir = args_backbone_cache(NULL),
                      .notes = {print_note, stdout}};
    trial_record rec;
    int st = trial_run(&rec, &kv, &opt, &err);
    config_free(&kv);
    if (st) fprintf(stderr, "petal demo: pretraining failed: %s\n", err.msg);
    else
        printf("demo: backbone %s: %.1f%% test accuracy on the pretraining corpus (11 classes, chance "
               "9.1%%), %.0f s\n", backbone, 100 * rec.test_acc_mean, petal_now() - t0);
    trial_record_free(&rec);
    return st;
}
