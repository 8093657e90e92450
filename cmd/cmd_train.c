// `petal train`: one trial (or every fold of one) from a YAML file and/or
// key=value settings, with checkpoints, exact resume and stop-on-signal.
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/config.h"
#include "core/threads.h"
#include "core/trial.h"

static const char usage[] =
    "usage: petal train [TRIAL.yaml] [--set key=value]... [--out DIR] [options]\n"
    "Runs one trial: the dataset's fold (or every fold with dataset.fold=all), the\n"
    "method, the recipe; prints the per-epoch history and the test accuracy of the\n"
    "best-validation state. Settings (petal train --keys) come from the YAML\n"
    "file, then --set, then the flags below (later wins).\n"
    "  --out DIR          write DIR/fold<k>.h5 checkpoints (after every epoch); an\n"
    "                     existing one resumes the trial, a finished one is reported\n"
    "  --save-backbone F  at the end, write the best-validation model (LoRA merged,\n"
    "                     with its classifier and class names) as a backbone file\n"
    "  --method M         = --set method=M        --epochs N  = train.epochs\n"
    "  --batch B          = train.batch           --lr X      = train.lr\n"
    "  --seed S           = train.seed            --fold K    = dataset.fold\n"
    "  --shots K          = dataset.shots         --backbone F = model.backbone\n"
    "  --data LAYOUT ROOT = dataset.layout, dataset.root\n"
    "  --threads N        OpenBLAS + OpenMP threads (default: SLURM_CPUS_PER_TASK or all)\n"
    BACKBONE_CACHE_HELP
    "  --synthetic        dataset.layout=synthetic (the default): learnable random features\n"
    "  --keys             print every setting (key, type, default, meaning) and exit\n"
    "  --keys-markdown    the same as the Markdown table of docs/SETTINGS.md\n"
    "  --stop-after-steps N  stop as if signalled after N optimizer steps (tests, drills)\n"
    "SIGTERM or SIGUSR1: finish the current step, write the checkpoint, exit 75\n"
    "(requeue me); rerunning the same command resumes bit-identically.\n";

static volatile sig_atomic_t stop_flag;
static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
}

// The trial's lines, flushed as they come (a redirected output keeps every
// finished line after a kill): progress notes and warnings on stderr, the
// epoch history and fold results on stdout.
static void print_note(void *ctx, const char *line) {
    fprintf(ctx, "%s\n", line);
    fflush(ctx);
}

static void print_epoch(void *ctx, int fold, int epoch, const epoch_record *h) {
    (void)fold;
    fprintf(ctx,
            "epoch %d train_loss=%.4f train_acc=%.4f valid_loss=%.4f valid_acc=%.4f lr=%.3g "
            "seconds=%.4f\n",
            epoch, h->train_loss, h->train_acc, h->valid_loss, h->valid_acc, h->lr, h->seconds);
    fflush(ctx);
}

static void print_fold(void *ctx, const fold_record *f) {
    if (f->status != TRIAL_DONE) return;
    fprintf(ctx, "result fold=%d best_epoch=%d valid_acc=%.4f test_acc=%.4f test_loss=%.4f\n",
            f->fold, f->best_epoch, f->best_valid_acc, f->test_acc, f->test_loss);
    fflush(ctx);
}

int cmd_train(int argc, char **argv) {
    config_kv kv = {0};
    petal_err err;
    const char *out = NULL, *save_backbone = NULL, *cache = NULL, *v;
    int threads = 0, synthetic = 0, stop_after = 0, keys = 0, keys_md = 0, st = PETAL_OK;
    args a = {argc, argv, 1, 0};
    static const struct {
        const char *flag, *key;
    } sugar[] = {{"--method", "method"},      {"--epochs", "train.epochs"},
                 {"--batch", "train.batch"},  {"--lr", "train.lr"},
                 {"--seed", "train.seed"},    {"--fold", "dataset.fold"},
                 {"--shots", "dataset.shots"}, {"--backbone", "model.backbone"}};
    for (; a.i < argc && !a.bad && !st; a.i++) {
        const char *arg = argv[a.i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage, stdout);
            config_free(&kv);
            return 0;
        }
        int used = 0;
        for (size_t k = 0; k < sizeof sugar / sizeof sugar[0] && !used; k++)
            if (args_flag(&a, sugar[k].flag, &v)) {
                used = 1;
                if (v) config_set(&kv, sugar[k].key, v, sugar[k].flag, 0, 0);
            }
        if (used) continue;
        if (args_flag(&a, "--set", &v)) {
            if (v) st = config_set_arg(&kv, v, &err);
        } else if (args_flag(&a, "--data", &v)) {
            if (v && a.i + 1 < argc) {
                config_set(&kv, "dataset.layout", v, "--data", 0, 0);
                config_set(&kv, "dataset.root", argv[++a.i], "--data", 0, 0);
            } else if (v) {
                fprintf(stderr, "petal: --data needs LAYOUT and ROOT\n");
                a.bad = 1;
            }
        } else if (args_flag(&a, "--out", &v)) {
            out = v;
        } else if (args_flag(&a, "--save-backbone", &v)) {
            save_backbone = v;
        } else if (args_flag(&a, "--backbone-cache", &v)) {
            cache = v;
        } else if (args_int(&a, "--threads", &threads, 1, 4096) ||
                   args_int(&a, "--stop-after-steps", &stop_after, 1, 0x7fffffff) ||
                   args_switch(&a, "--synthetic", &synthetic) || args_switch(&a, "--keys", &keys) ||
                   args_switch(&a, "--keys-markdown", &keys_md)) {
        } else if (arg[0] != '-') {
            st = config_read_yaml(&kv, arg, &err);
        } else {
            args_unknown(&a, "train");
        }
    }
    if (synthetic) config_set(&kv, "dataset.layout", "synthetic", "--synthetic", 0, 0);
    if ((keys || keys_md) && !a.bad && !st) {
        settings_print(stdout, keys_md);
        config_free(&kv);
        return 0;
    }
    trial_settings ts;
    if (!a.bad && !st) st = trial_settings_resolve(&ts, &kv, &err);
    if (a.bad || st) {
        if (st) fprintf(stderr, "petal train: %s\n", err.msg);
        config_free(&kv);
        return 2;
    }
    petal_set_threads(threads ? threads : ts.threads);
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    trial_opts opt = {.ckpt_dir = out, .save_backbone = save_backbone,
                      .share_dir = args_backbone_cache(cache), .stop = &stop_flag,
                      .stop_after_steps = stop_after, .on_epoch = print_epoch,
                      .on_fold = print_fold, .ctx = stdout, .notes = {print_note, stderr}};
    trial_record rec;
    st = trial_run(&rec, &kv, &opt, &err);
    if (!st && rec.n_folds > 1)
        printf("result folds=%d test_acc_mean=%.4f test_acc_std=%.4f\n", rec.n_folds,
               rec.test_acc_mean, rec.test_acc_std);
    if (st == PETAL_STOPPED)
        fprintf(stderr, "petal train: %s; rerun the same command to resume\n", err.msg);
    else if (st)
        fprintf(stderr, "petal train: %s\n", err.msg);
    trial_record_free(&rec);
    config_free(&kv);
    return st;
}

// `petal pretrain`: a full fine-tuning trial whose result is a backbone file.
int cmd_pretrain(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: petal pretrain [TRIAL.yaml] [--set key=value]... --save-backbone FILE\n"
               "Trains a backbone on a corpus (method full unless set otherwise; any petal\n"
               "train option) and writes it with its classifier to FILE.\n");
        return 0;
    }
    int has_out = 0;
    for (int i = 1; i < argc; i++) has_out |= !strcmp(argv[i], "--save-backbone");
    if (!has_out) {
        fprintf(stderr, "petal pretrain: --save-backbone FILE is required\n");
        return 2;
    }
    char **av = petal_malloc(sizeof(char *) * (size_t)(argc + 3));
    av[0] = argv[0];
    av[1] = "--method";
    av[2] = "full";
    for (int i = 1; i < argc; i++) av[i + 2] = argv[i];
    av[argc + 2] = NULL;
    int rc = cmd_train(argc + 2, av);
    free(av);
    return rc;
}
