// `petal demo`: the embedded default study `make demo` runs. Until the sweep
// layer exists it is a loop of trials: synthetic corpora in the real layouts,
// a tiny backbone pretrained on the sound corpus (kept for later runs), then
// every method of the study few-shot on the keyword corpus over seeds, ending
// with the comparison table.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/threads.h"
#include "core/trial.h"

static const char usage[] =
    "usage: petal demo [--data DIR] [--seeds N] [--shots K] [--threads N] [--quick]\n"
    "The embedded study: makes synthetic corpora in DIR (default demo-data) with\n"
    "`petal data synth`, pretrains a tiny AST on the ESC-50-like sound corpus (kept in\n"
    "DIR/backbone.h5), then trains full fine-tuning, linear probing, BitFit, LoRA, a\n"
    "Pfeiffer adapter and deep prompts K-shot (default 8) on the Speech-Commands-like\n"
    "keyword corpus for each seed (default 2), plus full fine-tuning from random weights\n"
    "as the no-pretraining baseline, and prints the comparison table.\n"
    "--quick: 6 clips per class, 128 frames, 2 epochs (a smoke run of the pipeline).\n";

// The study: a method preset and its settings for the tiny model (C 64).
static const struct {
    const char *name, *method, *sets[2];
    int pretrained;
} study[] = {
    {"full (no pretraining)", "full", {"train.lr=1e-3", NULL}, 0},
    {"full", "full", {"train.lr=1e-3", NULL}, 1},
    {"linear", "linear", {NULL, NULL}, 1},
    {"bitfit", "bitfit", {NULL, NULL}, 1},
    {"lora r4 (q,v)", "lora", {"lora.rank=4", NULL}, 1},
    {"adapter pfeiffer d8", "adapter_pfeiffer", {"adapter.dim=8", NULL}, 1},
    {"prompt deep P4", "prompt_deep", {"prompt.tokens=4", NULL}, 1},
};
enum { NM = sizeof study / sizeof study[0], MAX_SEEDS = 16 };

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void set(config_kv *kv, const char *key, const char *value) {
    config_set(kv, key, value, "petal demo", 0, 0);
}

int cmd_demo(int argc, char **argv) {
    const char *dir = "demo-data";
    int seeds = 2, shots = 8, threads = 0, quick = 0;
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        const char *v;
        if (!strcmp(argv[a.i], "--help") || !strcmp(argv[a.i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_flag(&a, "--data", &v)) dir = v ? v : dir;
        else if (args_int(&a, "--seeds", &seeds, 1, MAX_SEEDS) ||
                 args_int(&a, "--shots", &shots, 1, 1000) ||
                 args_int(&a, "--threads", &threads, 1, 4096) ||
                 args_switch(&a, "--quick", &quick)) {
        } else
            args_unknown(&a, "demo");
    }
    if (a.bad) return 2;
    petal_set_threads(threads);
    double t0 = petal_now();
    char path[4200], backbone[4200], num[32];
    petal_err err;

    // 1. Corpora (kept: a second run reuses them and their feature cache).
    const char *kinds[2] = {"sound", "speech"}, *folders[2] = {"ESC-50", "speech_commands_v0.02"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, folders[k]);
        if (exists(path)) continue;
        printf("demo: generating the %s corpus in %s\n", kinds[k], path);
        fflush(stdout);
        char *av[] = {"synth", "--out", (char *)dir, "--kind", (char *)kinds[k],
                      "--per-class", quick ? "6" : "30", NULL};
        int rc = cmd_data_synth(7, av);
        if (rc) return rc;
    }

    // 2. A tiny backbone pretrained on the sound corpus (ESC-50 fold 1 protocol).
    snprintf(backbone, sizeof backbone, "%s/backbone.h5", dir);
    if (!exists(backbone)) {
        printf("demo: pretraining a tiny AST on %s/ESC-50 (full fine-tuning, 500 frames)\n", dir);
        fflush(stdout);
        config_kv kv = {0};
        set(&kv, "dataset.layout", "esc50");
        set(&kv, "dataset.root", dir);
        set(&kv, "model.size", "tiny");
        set(&kv, "method", "full");
        set(&kv, "train.epochs", quick ? "2" : "30");
        if (quick) set(&kv, "features.frames", "128");
        set(&kv, "train.batch", "16");
        set(&kv, "train.lr", "3e-3");
        trial_opts opt = {.save_backbone = backbone, .share_dir = args_backbone_cache(NULL)};
        trial_record o;
        int st = trial_run(&o, &kv, &opt, &err);
        double acc = o.test_acc_mean, secs = o.seconds;
        trial_record_free(&o);
        config_free(&kv);
        if (st) {
            fprintf(stderr, "petal demo: pretraining failed: %s\n", err.msg);
            return st;
        }
        printf("demo: backbone %s: sound test accuracy %.1f%% (chance 10%%), %.0f s\n", backbone,
               100 * acc, secs);
    } else {
        printf("demo: reusing the backbone %s\n", backbone);
    }

    // 3. The study: every method x seed, few-shot on the keyword corpus.
    printf("demo: %d-shot keyword spotting on %s/speech_commands_v0.02, seeds 1..%d\n", shots,
           dir, seeds);
    double acc[NM][MAX_SEEDS], secs[NM] = {0};
    size_t trainable[NM] = {0}, total[NM] = {0};
    int failed = 0;
    for (int mi = 0; mi < NM; mi++) {
        for (int s = 1; s <= seeds; s++) {
            config_kv kv = {0};
            set(&kv, "dataset.layout", "gsc");
            set(&kv, "dataset.root", dir);
            snprintf(num, sizeof num, "%d", shots);
            set(&kv, "dataset.shots", num);
            set(&kv, "method", study[mi].method);
            if (study[mi].pretrained) set(&kv, "model.backbone", backbone);
            else set(&kv, "model.size", "tiny");
            set(&kv, "train.epochs", quick ? "2" : "20");
            set(&kv, "train.batch", "16");
            snprintf(num, sizeof num, "%d", s);
            set(&kv, "train.seed", num);
            for (int k = 0; k < 2 && study[mi].sets[k]; k++) {
                PETAL_ASSERT(config_set_arg(&kv, study[mi].sets[k], &err) == PETAL_OK);
                kv.e[kv.n - 1].src[0] = 0;
            }
            trial_opts opt = {.share_dir = args_backbone_cache(NULL)};
            trial_record o;
            int st = trial_run(&o, &kv, &opt, &err);
            trial_record_free(&o);  // the folds; the scalars below stay
            config_free(&kv);
            if (st) {
                fprintf(stderr, "demo: trial %s seed %d failed: %s\n", study[mi].name, s, err.msg);
                failed++;
                acc[mi][s - 1] = NAN;
                continue;
            }
            printf("trial method=%s seed=%d test_acc=%.4f seconds=%.1f\n", study[mi].method, s,
                   o.test_acc_mean, o.seconds);
            fflush(stdout);
            acc[mi][s - 1] = o.test_acc_mean;
            secs[mi] += o.seconds;
            trainable[mi] = o.trainable;
            total[mi] = o.total;
        }
    }
    printf("\n| method | test acc %% (mean ± std, %d seeds) | trainable params | %% of total | "
           "seconds |\n|---|---|---|---|---|\n", seeds);
    for (int mi = 0; mi < NM; mi++) {
        double mean = 0, var = 0;
        for (int s = 0; s < seeds; s++) mean += acc[mi][s] / seeds;
        for (int s = 0; s < seeds; s++) var += (acc[mi][s] - mean) * (acc[mi][s] - mean);
        double sd = seeds > 1 ? sqrt(var / (seeds - 1)) : 0.0;
        printf("| %s | %.1f ± %.1f | %zu | %.2f | %.1f |\n", study[mi].name, 100 * mean, 100 * sd,
               trainable[mi], total[mi] ? 100.0 * (double)trainable[mi] / (double)total[mi] : 0.0,
               secs[mi]);
    }
    printf("\ndemo: %.0f s in all (chance is 10%%)\n", petal_now() - t0);
    return failed ? 1 : 0;
}
