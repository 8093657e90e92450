// `petal train`: one trial (or every fold of one) from a YAML file and/or
// key=value settings, with checkpoints, exact resume and stop-on-signal.
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/backbone.h"
#include "core/config.h"
#include "core/features.h"
#include "core/threads.h"
#include "core/trial.h"
#include "core/trialspec.h"

static const char usage[] =
    "usage: petal train [TRIAL.yaml] [--set key=value]... [--out DIR] [options]\n"
    "Runs one trial: the dataset's fold (or every fold with dataset.fold=all), the\n"
    "method, the recipe; prints the per-epoch history and the test accuracy of the\n"
    "best-validation state. Settings (core/trialspec.h, README) come from the YAML\n"
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
    "  --stop-after-steps N  stop as if signalled after N optimizer steps (tests, drills)\n"
    "SIGTERM or SIGUSR1: finish the current step, write the checkpoint, exit 75\n"
    "(requeue me); rerunning the same command resumes bit-identically.\n";

static volatile sig_atomic_t stop_flag;
static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
}

// The trial's model: the backbone file's architecture (at the trial's frames),
// or a random backbone of model.size; the dataset's classes.
int trial_model_config(ast_config *cfg, const trial_spec *ts, int K, petal_err *err) {
    int st;
    if (ts->backbone[0]) {
        if ((st = backbone_read_config(cfg, NULL, ts->backbone, err))) return st;
        if (cfg->F != ts->mel_bins)
            return petal_fail(err, PETAL_EINPUT, "%s: backbone has %d mel bins, the trial %d",
                              ts->backbone, cfg->F, ts->mel_bins);
        cfg->frames = ts->frames;
        cfg->K = K;
        cfg->head_ln = 0;
    } else if ((st = ast_config_preset(cfg, ts->size, ts->frames, K, err))) {
        return st;
    }
    cfg->F = ts->mel_bins;
    cfg->pool = ts->pool;
    return ast_config_check(cfg, err);
}

// printf to log, which may be NULL (quiet).
static void say(FILE *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(FILE *log, const char *fmt, ...) {
    if (!log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log, fmt, ap);
    va_end(ap);
    fflush(log);
}

// Runs (or resumes) fold `fold`; fills *acc. Returns a PETAL_* status.
static int run_fold(double *acc, train_outcome *o, const trial_spec *ts, const char *identity,
                    int fold, const train_opts *opt, petal_err *err) {
    const char *out = opt->out, *save_backbone = opt->save_backbone;
    FILE *log = opt->log;
    trial_data d;
    int st = trial_data_load(&d, ts, fold, log ? stderr : NULL, err);
    if (st) return st;
    ast_config cfg;
    if ((st = trial_model_config(&cfg, ts, d.K, err))) goto done;
    trial_config tc = {.epochs = ts->epochs, .batch = ts->batch, .seed = ts->seed,
                       .opt = adamw_defaults(ts->lr), .aug = ts->specaug ? &ts->aug : NULL};
    tc.opt.weight_decay = ts->weight_decay;
    tc.share_dir = opt->share_dir;
    tc.bf16 = ts->bf16;
    trainer t;
    if ((st = trainer_init(&t, &cfg, &ts->method, &tc, &d.split[0], &d.split[1], &d.split[2],
                           ts->backbone[0] ? ts->backbone : NULL, err)))
        goto done;
    t.stop = &stop_flag;
    t.stop_at_step = opt->stop_after;
    t.labels = d.classes;
    char ckpt[TRIAL_PATH_MAX + 32], *ident = NULL;
    if (out) {
        snprintf(ckpt, sizeof ckpt, "%s/fold%d.h5", out, fold);
        size_t n = strlen(identity) + 32;
        ident = petal_malloc(n);
        snprintf(ident, n, "%sfold: %d\n", identity, fold);
        if (access(ckpt, F_OK) == 0) {
            if ((st = trainer_load(&t, ckpt, ident, err))) goto free_trainer;
            say(log, "resuming fold %d from %s at epoch %d, step %ld%s\n", fold, ckpt, t.epoch,
                t.step, t.done ? " (finished)" : "");
        }
    }
    o->trainable = param_count(&t.m.params, 1);
    o->total = param_count(&t.m.params, 0);
    say(log, "trial fold=%d method=%s train=%d valid=%d test=%d classes=%d trainable=%zu "
        "total=%zu\n",
        fold, ast_method_name(&ts->method), d.split[0].n, d.split[1].n, d.split[2].n, d.K,
        o->trainable, o->total);
    if (!t.done) st = trainer_run(&t, out ? ckpt : NULL, ident, log, err);
    if (st == PETAL_STOPPED)
        fprintf(stderr, "petal train: stopped at step %ld%s%s; rerun the same command to resume\n",
                t.step, out ? ", checkpoint written to " : " (no --out: nothing saved)",
                out ? ckpt : "");
    if (st == PETAL_EFAIL) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        petal_fail(err, st, "fold %d diverged: %s", fold, why);
    }
    if (!st) {
        say(log, "result fold=%d best_epoch=%d valid_acc=%.4f test_acc=%.4f test_loss=%.4f\n",
            fold, t.best_epoch, t.valid ? t.best_acc : NAN, t.test_acc, t.test_loss);
        *acc = t.test_acc;
    }
    if (!st && save_backbone) {
        // The best-validation state, LoRA folded into its projections, with the
        // classifier and the class names: a backbone for later trials and for predict.
        param_unpack(&t.m.params, t.best, PARAM_STATE);
        ast_lora_merge(&t.m);
        st = backbone_save(save_backbone, &t.m, 1, d.classes, err);
        if (!st) say(log, "backbone written to %s\n", save_backbone);
    }
free_trainer:
    free(ident);
    trainer_free(&t);
done:
    trial_data_free(&d);
    return st;
}

int train_run(train_outcome *o, const config_kv *kv, const train_opts *opt, petal_err *err) {
    memset(o, 0, sizeof *o);
    trial_spec ts;
    int st = trial_spec_resolve(&ts, kv, err);
    if (st) return st;
    // The trial's identity (what a checkpoint must match): every setting but threads.
    config_kv id = {0};
    for (int i = 0; i < kv->n; i++)
        if (strcmp(kv->e[i].key, "train.threads"))
            config_set(&id, kv->e[i].key, kv->e[i].value, "", 0, 0);
    char *identity = config_to_yaml(&id);
    config_free(&id);
    if (opt->out && mkdir(opt->out, 0777) && access(opt->out, W_OK))
        st = petal_fail(err, PETAL_EINPUT, "%s: cannot create output folder", opt->out);
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    int n_folds = 1;
    if (!st && ts.fold == 0) st = trial_data_folds(&n_folds, &ts, err);
    if (!st && opt->save_backbone && ts.fold == 0 && n_folds > 1)
        st = petal_fail(err, PETAL_EINPUT, "--save-backbone takes one fold, not dataset.fold=all");
    const ast_method *me = &ts.method;
    if (!st && opt->save_backbone &&
        (me->adapter.at_mhsa || me->adapter.at_ffn || me->prompt.tokens || me->prefix.tokens ||
         me->moa.kind != MOA_NONE))
        st = petal_fail(err, PETAL_EINPUT,
                        "--save-backbone: a %s model has tensors a backbone file cannot hold "
                        "(only full, linear, BitFit and LoRA, merged, export); predict from its "
                        "checkpoint instead (petal predict --checkpoint)",
                        ast_method_name(me));
    double accs[100], t0 = petal_now();
    for (int f = ts.fold ? ts.fold : 1; !st && f <= (ts.fold ? ts.fold : n_folds) && o->folds < 100; f++) {
        st = run_fold(&accs[o->folds], o, &ts, identity, f, opt, err);
        if (!st) o->folds++;
    }
    for (int i = 0; i < o->folds; i++) o->acc_mean += accs[i] / o->folds;
    for (int i = 0; i < o->folds; i++) o->acc_std += (accs[i] - o->acc_mean) * (accs[i] - o->acc_mean);
    o->acc_std = o->folds > 1 ? sqrt(o->acc_std / (o->folds - 1)) : 0.0;
    o->seconds = petal_now() - t0;
    if (!st && o->folds > 1)
        say(opt->log, "result folds=%d test_acc_mean=%.4f test_acc_std=%.4f\n", o->folds,
            o->acc_mean, o->acc_std);
    free(identity);
    return st;
}

int cmd_train(int argc, char **argv) {
    config_kv kv = {0};
    petal_err err;
    const char *out = NULL, *save_backbone = NULL, *cache = NULL, *v;
    int threads = 0, synthetic = 0, stop_after = -1, st = PETAL_OK;
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
        } else if (args_int(&a, "--threads", &threads, 0, 4096) ||
                   args_int(&a, "--stop-after-steps", &stop_after, 0, 0x7fffffff) ||
                   args_switch(&a, "--synthetic", &synthetic)) {
        } else if (arg[0] != '-') {
            st = config_read_yaml(&kv, arg, &err);
        } else {
            args_unknown(&a, "train");
        }
    }
    if (synthetic) config_set(&kv, "dataset.layout", "synthetic", "--synthetic", 0, 0);
    trial_spec ts;
    if (!a.bad && !st) st = trial_spec_resolve(&ts, &kv, &err);
    if (a.bad || st) {
        if (st) fprintf(stderr, "petal train: %s\n", err.msg);
        config_free(&kv);
        return 2;
    }
    petal_set_threads(threads ? threads : ts.threads);
    train_opts opt = {.out = out, .save_backbone = save_backbone, .stop_after = stop_after,
                      .log = stdout, .share_dir = args_backbone_cache(cache)};
    train_outcome o;
    st = train_run(&o, &kv, &opt, &err);
    if (st && st != PETAL_STOPPED) fprintf(stderr, "petal train: %s\n", err.msg);
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
