// ==== Training epochs and evaluation over in-memory features ===================
#include "core/train.h"

#include <math.h>
#include <string.h>

// Gathers batch rows idx[0..B) of data into contiguous x (B, frames, F), y (B).
static void gather(float *x, int *y, const feature_set *data, const int *idx, int B,
                   size_t example) {
    for (int b = 0; b < B; b++) {
        memcpy(x + (size_t)b * example, data->x + (size_t)idx[b] * example,
               example * sizeof *x);
        y[b] = data->y[idx[b]];
    }
}

static int grads_finite(const param_table *t) {
    float s = 0.0f;
    for (size_t i = 0; i < t->ngrad; i++) s += t->grad[i] * 0.0f;  // NaN/Inf propagate
    return s == 0.0f;
}

int train_epoch(epoch_stats *out, ast_model *m, adamw_state *opt, const feature_set *data,
                petal_rng *rng, long *step, long total_steps, petal_err *err) {
    double t0 = petal_now();
    size_t example = (size_t)m->cfg.frames * m->cfg.F;
    int *order = petal_malloc(sizeof(int) * (size_t)data->n);
    for (int i = 0; i < data->n; i++) order[i] = i;
    petal_rng_shuffle(rng, order, data->n);
    float *x = petal_falloc((size_t)m->Bm * example);
    int *y = petal_malloc(sizeof(int) * (size_t)m->Bm);
    double loss_sum = 0.0;
    long right = 0;
    int status = PETAL_OK;
    for (int i = 0; i < data->n; i += m->Bm) {
        int B = data->n - i < m->Bm ? data->n - i : m->Bm, correct = 0;
        gather(x, y, data, order + i, B, example);
        double loss = ast_forward(m, x, y, B, &correct);
        if (!isfinite(loss)) {
            status = petal_fail(err, PETAL_EFAIL, "loss is %g at step %ld", loss, *step);
            break;
        }
        ast_backward(m, y, B);
        if (!grads_finite(&m->params)) {
            status = petal_fail(err, PETAL_EFAIL, "non-finite gradient at step %ld", *step);
            break;
        }
        adamw_step(opt, &m->params, cosine_lr(opt->cfg.lr, *step, total_steps));
        (*step)++;
        loss_sum += loss * B;
        right += correct;
    }
    out->loss = loss_sum / data->n;
    out->acc = (double)right / data->n;
    out->seconds = petal_now() - t0;
    free(order);
    free(x);
    free(y);
    return status;
}

void evaluate(epoch_stats *out, ast_model *m, const feature_set *data) {
    double t0 = petal_now();
    size_t example = (size_t)m->cfg.frames * m->cfg.F;
    double loss_sum = 0.0;
    long right = 0;
    for (int i = 0; i < data->n; i += m->Bm) {
        int B = data->n - i < m->Bm ? data->n - i : m->Bm, correct = 0;
        loss_sum += ast_forward(m, data->x + (size_t)i * example, data->y + i, B, &correct) * B;
        right += correct;
    }
    out->loss = data->n ? loss_sum / data->n : 0.0;
    out->acc = data->n ? (double)right / data->n : 0.0;
    out->seconds = petal_now() - t0;
}

void synthetic_features(float *x, int *y, int n, int frames, int F, int K, uint64_t seed) {
    petal_rng rng;
    petal_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        int k = (int)petal_rng_below(&rng, (uint64_t)K);
        y[i] = k;
        int band0 = k * F / K, band1 = (k + 1) * F / K + 2;  // bands overlap a little
        int period = 4 + k % 5;
        float *xi = x + (size_t)i * frames * F;
        for (int t = 0; t < frames; t++)
            for (int f = 0; f < F; f++) {
                float v = (float)petal_rng_normal(&rng);
                if (f >= band0 && f < band1 && t % period < period / 2) v += 1.0f;
                xi[(size_t)t * F + f] = v;
            }
    }
}
