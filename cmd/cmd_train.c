// `petal train`: one trial. Until the datasets land it trains on a learnable
// synthetic feature set (--synthetic): train / valid / test splits, the
// cosine schedule per step, per-epoch history, test accuracy of the
// best-validation model.
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/adamw.h"
#include "core/ast.h"
#include "core/threads.h"
#include "core/trial.h"

static const char usage[] =
    "usage: petal train --synthetic [options]\n"
    "Trains one trial and prints its per-epoch history and test accuracy.\n"
    "  --synthetic              train on a generated feature set (n examples per split)\n"
    MODEL_OPTS_HELP
    "  --examples N             training examples (valid and test get N/2 each)\n"
    "  --epochs N  --batch B  --lr X (default: the method's recipe lr)\n"
    "  --weight-decay X  --seed S  --threads N\n";

// Synthetic train / valid / test splits (n, n/2, n/2) for `cfg`; caller frees.
int synthetic_splits(feature_set sets[3], const ast_config *cfg, int examples, uint64_t seed) {
    size_t ex = (size_t)cfg->frames * cfg->F;
    int half = examples / 2 > 0 ? examples / 2 : 1;
    int n[3] = {examples, half, half};
    for (int s = 0; s < 3; s++) {
        float *x = petal_falloc((size_t)n[s] * ex);
        int *y = petal_malloc(sizeof(int) * (size_t)n[s]);
        synthetic_features(x, y, n[s], cfg->frames, cfg->F, cfg->K, seed * 3 + (uint64_t)s + 1);
        sets[s] = (feature_set){x, y, n[s]};
    }
    return PETAL_OK;
}

void synthetic_free(feature_set sets[3]) {
    for (int s = 0; s < 3; s++) free((void *)sets[s].x), free((void *)sets[s].y);
}

int cmd_train(int argc, char **argv) {
    model_opts mo = {.size = "tiny", .method = "full", .pool = "all", .frames = 48, .classes = 5};
    int synthetic = 0, examples = 96, epochs = 5, batch = 8, threads = 0, seed = 1;
    float lr = 0.0f, wd = 0.1f;
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        if (!strcmp(argv[a.i], "--help") || !strcmp(argv[a.i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_switch(&a, "--synthetic", &synthetic) || args_model(&a, &mo) ||
            args_int(&a, "--examples", &examples, 1, 1 << 24) ||
            args_int(&a, "--epochs", &epochs, 1, 100000) ||
            args_int(&a, "--batch", &batch, 1, 65536) ||
            args_int(&a, "--threads", &threads, 0, 4096) ||
            args_int(&a, "--seed", &seed, 0, 0x7fffffff) ||
            args_float(&a, "--lr", &lr, 0.0f, 10.0f) ||
            args_float(&a, "--weight-decay", &wd, 0.0f, 10.0f))
            continue;
        args_unknown(&a, "train");
    }
    if (a.bad) return 2;
    if (!synthetic) {
        fprintf(stderr, "petal train: only --synthetic data exists yet\n%s", usage);
        return 2;
    }
    petal_err err;
    ast_config cfg;
    ast_method meth;
    if (model_opts_resolve(&cfg, &meth, &mo, &err)) {
        fprintf(stderr, "petal train: %s\n", err.msg);
        return 2;
    }
    petal_set_threads(threads);
    adamw_config oc = adamw_defaults(lr > 0 ? lr : ast_method_default_lr(&meth));
    oc.weight_decay = wd;
    trial_config tc = {.epochs = epochs, .batch = batch, .opt = oc, .seed = (uint64_t)seed};
    feature_set sets[3];
    synthetic_splits(sets, &cfg, examples, (uint64_t)seed);
    trial_result sum;
    int st = trial_run(&sum, &cfg, &meth, &tc, &sets[0], &sets[1], &sets[2], stdout, &err);
    synthetic_free(sets);
    if (st) {
        fprintf(stderr, "petal train: %s\n", err.msg);
        return st;
    }
    printf("result method=%s best_epoch=%d valid_acc=%.4f test_acc=%.4f trainable=%zu total=%zu "
           "seconds=%.1f\n",
           ast_method_name(&meth), sum.best_epoch, sum.best_valid_acc, sum.test_acc, sum.trainable,
           sum.total, sum.seconds);
    return 0;
}
