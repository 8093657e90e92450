// ==== The trainer: one fold's steps, epochs, validation, best copy, test ==========
#include "core/trainer.h"

#include "core/backbone.h"
#include "core/checkpoint.h"

#include <math.h>
#include <string.h>

static void new_order(trainer *t) {
    for (int i = 0; i < t->train->n; i++) t->order[i] = i;
    petal_rng_shuffle(&t->rng, t->order, t->train->n);
}

int trainer_init(trainer *t, const ast_config *cfg, const ast_method *meth,
                 const trainer_config *tc, const feature_set *train, const feature_set *valid,
                 const feature_set *test, const char *backbone, petal_err *warn, petal_err *err) {
    memset(t, 0, sizeof *t);
    if (warn) warn->msg[0] = 0;
    t->tc = *tc;
    t->train = train;
    t->valid = valid && valid->n ? valid : NULL;
    t->test = test;
    t->stop_at_step = -1;
    t->stop_at_epoch = -1;
    int st = ast_model_init_layerwise(&t->m, cfg, meth, tc->batch, err);
    if (st) return st;
    ast_init_weights(&t->m, tc->seed, backbone != NULL);
    if (backbone && (st = backbone_load(&t->m, backbone, 0, tc->share_dir, warn, err))) {
        ast_model_free(&t->m);
        return st;
    }
    if (tc->bf16 && (st = ast_model_use_bf16(&t->m, backbone ? tc->share_dir : NULL, NULL, 0,
                                             err))) {
        ast_model_free(&t->m);
        return st;
    }
    adamw_init(&t->opt, &tc->opt, &t->m.params);
    petal_rng_seed(&t->rng, tc->seed ^ 0x5eedULL);
    t->total_steps = (long)tc->epochs * ((train->n + tc->batch - 1) / tc->batch);
    t->order = petal_malloc(sizeof(int) * (size_t)(train->n ? train->n : 1));
    new_order(t);
    t->nbest = param_count_selected(&t->m.params, PARAM_STATE);
    t->best = petal_falloc(t->nbest);
    t->best_acc = -1.0;
    t->hist = petal_calloc((size_t)(tc->epochs ? tc->epochs : 1), sizeof *t->hist);
    size_t ex = (size_t)cfg->frames * cfg->F;
    t->xb = petal_falloc((size_t)tc->batch * ex);
    t->yb = petal_malloc(sizeof(int) * (size_t)tc->batch);
    size_t n = (size_t)train->n + (t->valid ? (size_t)t->valid->n : 0) + (size_t)test->n;
    t->fast = t->m.bw_floor >= 2 * cfg->L && !tc->aug &&
              n * t->m.T * cfg->C * sizeof(float) <= TRAINER_FAST_BYTES;
    t->eb = petal_falloc((size_t)tc->batch * t->m.T * cfg->C);
    return PETAL_OK;
}

// The three sets' encoder outputs, made once (the frozen encoder never changes).
static const feature_set *trainer_set(const trainer *t, int s) {
    return s == 0 ? t->train : s == 1 ? t->valid : t->test;
}

static void make_encodings(trainer *t) {
    size_t ex = (size_t)t->m.cfg.frames * t->m.cfg.F, row = (size_t)t->m.T * t->m.cfg.C;
    for (int s = 0; s < 3; s++) {
        const feature_set *d = trainer_set(t, s);
        if (t->enc[s] || !d) continue;
        t->enc[s] = petal_falloc((size_t)(d->n ? d->n : 1) * row);
        for (int i = 0; i < d->n; i += t->m.Bm) {
            int B = d->n - i < t->m.Bm ? d->n - i : t->m.Bm;
            ast_encode(&t->m, t->enc[s] + (size_t)i * row, d->x + (size_t)i * ex, B);
        }
    }
}

// evaluate() on set s, from its encoder outputs when on the fast path.
static void trainer_eval(eval_stats *out, trainer *t, int s) {
    const feature_set *d = trainer_set(t, s);
    if (!t->fast) {
        evaluate(out, &t->m, d);
        return;
    }
    double t0 = petal_now(), loss_sum = 0.0;
    size_t row = (size_t)t->m.T * t->m.cfg.C;
    long right = 0;
    for (int i = 0; i < d->n; i += t->m.Bm) {
        int B = d->n - i < t->m.Bm ? d->n - i : t->m.Bm, correct = 0;
        loss_sum += ast_forward_encoded(&t->m, t->enc[s] + (size_t)i * row, d->y + i, B, &correct) * B;
        right += correct;
    }
    out->loss = d->n ? loss_sum / d->n : 0.0;
    out->acc = d->n ? (double)right / d->n : 0.0;
    out->seconds = petal_now() - t0;
}

void trainer_free(trainer *t) {
    for (int s = 0; s < 3; s++) free(t->enc[s]);
    free(t->eb);
    adamw_free(&t->opt);
    ast_model_free(&t->m);
    free(t->order), free(t->best), free(t->hist), free(t->xb), free(t->yb);
    memset(t, 0, sizeof *t);
}

// One optimizer step over the next batch of the current epoch.
static int train_step(trainer *t, petal_err *err) {
    const ast_config *c = &t->m.cfg;
    size_t ex = (size_t)c->frames * c->F;
    int n = t->train->n, B = n - t->pos < t->tc.batch ? n - t->pos : t->tc.batch, correct = 0;
    size_t row = (size_t)t->m.T * c->C;
    float *enc = t->fast ? t->eb : NULL;
    for (int b = 0; b < B; b++) {
        int i = t->order[t->pos + b];
        t->yb[b] = t->train->y[i];
        if (enc) {
            memcpy(enc + b * row, t->enc[0] + (size_t)i * row, row * sizeof(float));
            continue;
        }
        memcpy(t->xb + b * ex, t->train->x + (size_t)i * ex, ex * sizeof(float));
        if (t->tc.aug) specaug_apply(t->xb + b * ex, &t->rng, t->tc.aug, c->frames, c->F);
    }
    t->m.training = 1;
    double loss = enc ? ast_forward_encoded(&t->m, enc, t->yb, B, &correct)
                      : ast_forward(&t->m, t->xb, t->yb, B, &correct);
    if (!isfinite(loss))
        return t->diverged = 1, petal_fail(err, PETAL_EFAIL, "loss is %g at epoch %d, step %ld", loss,
                          t->epoch + 1, t->step);
    if (train_backward_step(&t->m, &t->opt, cosine_lr(t->tc.opt.lr, t->step, t->total_steps), t->yb, B))
        return t->diverged = 1, petal_fail(err, PETAL_EFAIL, "non-finite gradient at epoch %d, step %ld",
                          t->epoch + 1, t->step);
    t->step++;
    t->pos += B;
    t->loss_sum += loss * B;
    t->right += correct;
    return PETAL_OK;
}

void evaluate(eval_stats *out, ast_model *m, const feature_set *data) {
    double t0 = petal_now();
    size_t example = (size_t)m->cfg.frames * m->cfg.F;
    double loss_sum = 0.0;
    long right = 0;
    int was = m->training;
    m->training = 0;
    for (int i = 0; i < data->n; i += m->Bm) {
        int B = data->n - i < m->Bm ? data->n - i : m->Bm, correct = 0;
        loss_sum += ast_forward(m, data->x + (size_t)i * example, data->y + i, B, &correct) * B;
        right += correct;
    }
    m->training = was;
    out->loss = data->n ? loss_sum / data->n : 0.0;
    out->acc = data->n ? (double)right / data->n : 0.0;
    out->seconds = petal_now() - t0;
}

static int stop_requested(const trainer *t) {
    return (t->stop && *t->stop) || (t->stop_at_step >= 0 && t->step >= t->stop_at_step) ||
           (t->stop_at_epoch >= 0 && t->epoch >= t->stop_at_epoch && t->pos == 0);
}

int trainer_run(trainer *t, const char *ckpt, const char *config_text, petal_err *err) {
    while (t->epoch < t->tc.epochs) {
        // resumed at the end of its epoch budget (early stopping): nothing to run
        if (t->stop_at_epoch >= 0 && t->epoch >= t->stop_at_epoch && t->pos == 0) return PETAL_STOPPED;
        double t0 = petal_now();
        if (t->fast) make_encodings(t);  // counted in the first epoch's time
        while (t->pos < t->train->n) {
            int st = train_step(t, err);
            if (st) return st;
            if (stop_requested(t) && t->pos < t->train->n) {
                t->seconds += petal_now() - t0;
                if (ckpt && (st = checkpoint_save(t, ckpt, config_text, err))) return st;
                return PETAL_STOPPED;
            }
        }
        // Epoch end: validate, keep the best copy, record, start the next order.
        epoch_record *h = &t->hist[t->epoch];
        eval_stats va = {0};
        if (t->valid) trainer_eval(&va, t, 1);
        long steps_per_epoch = (t->train->n + t->tc.batch - 1) / t->tc.batch;
        *h = (epoch_record){.train_loss = t->loss_sum / t->train->n,
                            .train_acc = (double)t->right / t->train->n,
                            .valid_loss = va.loss, .valid_acc = va.acc,
                            .lr = cosine_lr(t->tc.opt.lr, t->step - steps_per_epoch,
                                            t->total_steps),
                            .seconds = t->seconds + petal_now() - t0};
        t->epoch++;
        if (!t->valid || va.acc > t->best_acc) {  // no valid set: the last epoch
            t->best_acc = va.acc;
            t->best_epoch = t->epoch;
            param_pack(t->best, &t->m.params, PARAM_STATE);
        }
        if (t->on_epoch) t->on_epoch(t->ctx, t->epoch, h);
        t->pos = 0;
        t->loss_sum = t->seconds = 0.0;
        t->right = 0;
        if (t->epoch < t->tc.epochs) new_order(t);
        if (t->epoch == t->tc.epochs) {
            // Test the best-validation copy (the live weights go on to the checkpoint
            // as they are, so that nothing depends on the order of these steps).
            float *live = petal_falloc(t->nbest);
            param_pack(live, &t->m.params, PARAM_STATE);
            param_unpack(&t->m.params, t->best, PARAM_STATE);
            eval_stats te;
            trainer_eval(&te, t, 2);
            param_unpack(&t->m.params, live, PARAM_STATE);
            free(live);
            t->test_acc = te.acc;
            t->test_loss = te.loss;
            t->done = 1;
        }
        int st;
        if (ckpt && (st = checkpoint_save(t, ckpt, config_text, err))) return st;
        if (!t->done && stop_requested(t)) return PETAL_STOPPED;
    }
    if (!t->done) {  // zero epochs
        t->done = 1;
        eval_stats te;
        if (t->fast) make_encodings(t);
        trainer_eval(&te, t, 2);
        t->test_acc = te.acc;
        t->test_loss = te.loss;
    }
    return PETAL_OK;
}
