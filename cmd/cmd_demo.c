// `petal demo`: the embedded default study `make demo` runs. Until the sweep
// layer exists it is a loop of trials: every method x seeds on the synthetic
// feature set, ending with the comparison table.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/threads.h"
#include "core/trial.h"

static const char usage[] =
    "usage: petal demo [--seeds N] [--epochs N] [--threads N]\n"
    "Runs the embedded study (methods full, linear, bitfit x seeds on a small model\n"
    "and synthetic features) and prints the comparison table.\n";

int cmd_demo(int argc, char **argv) {
    int seeds = 2, epochs = 6, threads = 0;
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        if (!strcmp(argv[a.i], "--help") || !strcmp(argv[a.i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_int(&a, "--seeds", &seeds, 1, 100) || args_int(&a, "--epochs", &epochs, 1, 1000) ||
            args_int(&a, "--threads", &threads, 0, 4096))
            continue;
        args_unknown(&a, "demo");
    }
    if (a.bad) return 2;
    petal_set_threads(threads);
    const char *methods[] = {"full", "linear", "bitfit"};
    enum { NM = 3 };
    petal_err err;
    ast_config cfg;
    PETAL_ASSERT(ast_config_preset(&cfg, "tiny", 64, 6, &err) == PETAL_OK);
    printf("demo study: AST C=%d L=%d heads=%d, %d frames x %d mel bins, %d classes of "
           "synthetic features; %d epochs; seeds 1..%d\n",
           cfg.C, cfg.L, cfg.NH, cfg.frames, cfg.F, cfg.K, epochs, seeds);
    double acc[NM][100], secs[NM] = {0};
    size_t trainable[NM] = {0}, total = 0;
    int failed = 0;
    for (int mi = 0; mi < NM; mi++) {
        ast_method meth;
        PETAL_ASSERT(ast_method_parse(&meth, methods[mi], &err) == PETAL_OK);
        // Full fine-tuning of a randomly initialised backbone needs more than the
        // recipe's 5e-5 (which assumes a pretrained one).
        float lr = meth.base == METHOD_FULL ? 1e-3f : ast_method_default_lr(&meth);
        for (int s = 1; s <= seeds; s++) {
            trial_config tc = {.epochs = epochs, .batch = 16, .opt = adamw_defaults(lr),
                               .seed = (uint64_t)s};
            feature_set sets[3];
            synthetic_splits(sets, &cfg, 192, (uint64_t)s);
            trial_result r;
            int st = trial_run(&r, &cfg, &meth, &tc, &sets[0], &sets[1], &sets[2], NULL, &err);
            synthetic_free(sets);
            if (st) {
                fprintf(stderr, "demo: trial %s seed %d failed: %s\n", methods[mi], s, err.msg);
                failed++;
                acc[mi][s - 1] = NAN;
                continue;
            }
            printf("trial method=%s seed=%d best_epoch=%d test_acc=%.4f seconds=%.1f\n",
                   methods[mi], s, r.best_epoch, r.test_acc, r.seconds);
            acc[mi][s - 1] = r.test_acc;
            secs[mi] += r.seconds;
            trainable[mi] = r.trainable;
            total = r.total;
        }
    }
    printf("\n| method | test acc (mean ± std over %d seeds) | trainable params | %% of total | "
           "seconds |\n|---|---|---|---|---|\n", seeds);
    for (int mi = 0; mi < NM; mi++) {
        double mean = 0, var = 0;
        for (int s = 0; s < seeds; s++) mean += acc[mi][s] / seeds;
        for (int s = 0; s < seeds; s++) var += (acc[mi][s] - mean) * (acc[mi][s] - mean);
        double sd = seeds > 1 ? sqrt(var / (seeds - 1)) : 0.0;
        printf("| %s | %.1f ± %.1f | %zu | %.2f | %.1f |\n", methods[mi], 100 * mean, 100 * sd,
               trainable[mi], total ? 100.0 * (double)trainable[mi] / (double)total : 0.0,
               secs[mi]);
    }
    return failed ? 1 : 0;
}
