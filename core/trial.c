// ==== One trial: epochs, validation, best-model copy, test =======================
#include "core/trial.h"

#include <string.h>

int trial_run(trial_result *res, const ast_config *cfg, const ast_method *meth,
              const trial_config *tc, const feature_set *train, const feature_set *valid,
              const feature_set *test, FILE *history, petal_err *err) {
    memset(res, 0, sizeof *res);
    ast_model m;
    int st = ast_model_init(&m, cfg, meth, tc->batch, err);
    if (st) return st;
    ast_init_weights(&m, tc->seed);
    adamw_state opt;
    adamw_init(&opt, &tc->opt, &m.params);
    petal_rng rng;
    petal_rng_seed(&rng, tc->seed ^ 0x5eedULL);
    long step = 0, total = (long)tc->epochs * ((train->n + tc->batch - 1) / tc->batch);
    // The best-validation weights are a copy, never a pointer to the live ones.
    float *best = petal_falloc(m.params.ndata);
    double t0 = petal_now();
    res->best_valid_acc = -1.0;
    for (int e = 1; e <= tc->epochs; e++) {
        epoch_stats tr, va = {0};
        float lr = cosine_lr(tc->opt.lr, step, total);
        st = train_epoch(&tr, &m, &opt, train, &rng, &step, total, err);
        if (st) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            petal_fail(err, st, "trial diverged in epoch %d: %s", e, why);
            break;
        }
        if (valid) evaluate(&va, &m, valid);
        res->last_valid_acc = va.acc;
        if (history)
            fprintf(history,
                    "epoch %d train_loss=%.4f train_acc=%.4f valid_loss=%.4f valid_acc=%.4f "
                    "lr=%.3g seconds=%.2f\n",
                    e, tr.loss, tr.acc, va.loss, va.acc, lr, tr.seconds + va.seconds);
        if (!valid || va.acc > res->best_valid_acc) {
            res->best_valid_acc = va.acc;
            res->best_epoch = e;
            memcpy(best, m.params.data, m.params.ndata * sizeof *best);
        }
    }
    if (!st) {
        memcpy(m.params.data, best, m.params.ndata * sizeof *best);
        epoch_stats te;
        evaluate(&te, &m, test);
        res->test_acc = te.acc;
        res->test_loss = te.loss;
    }
    res->seconds = petal_now() - t0;
    res->trainable = param_count(&m.params, 1);
    res->total = param_count(&m.params, 0);
    free(best);
    adamw_free(&opt);
    ast_model_free(&m);
    return st;
}
