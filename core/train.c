// ==== The optimizer step; synthetic features for smoke runs, tests and benchmarks ====
#include "core/train.h"

#include <math.h>
#include <string.h>

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

typedef struct {
    ast_model *m;
    adamw_state *opt;
    int bad;
} step_ctx;

// Applies AdamW to layer l, clearing its gradients; 1 when it did. After a
// non-finite gradient nothing more is applied.
static int step_layer(void *ctx, int l) {
    step_ctx *c = ctx;
    if (c->bad) return 0;
    c->bad = !adamw_apply(c->opt, &c->m->params, l, 1);
    return 1;
}

int train_backward_step(ast_model *m, adamw_state *opt, float lr, const int *labels, int B) {
    step_ctx c = {m, opt, 0};
    m->on_layer = step_layer;
    m->on_layer_ctx = &c;
    adamw_begin(opt, lr);
    ast_backward(m, labels, B);
    m->on_layer = NULL;
    m->on_layer_ctx = NULL;
    if (!c.bad) c.bad = !adamw_apply(opt, &m->params, -1, 0);
    return c.bad ? -1 : 0;
}
