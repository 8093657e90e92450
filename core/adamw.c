// ==== AdamW and the cosine schedule =============================================
#include "core/adamw.h"

#include <math.h>
#include <string.h>

adamw_config adamw_defaults(float lr) {
    return (adamw_config){.lr = lr, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f,
                          .weight_decay = 0.1f};
}

void adamw_init(adamw_state *s, const adamw_config *cfg, const param_table *t) {
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->n = t->ngrad;
    s->m = petal_falloc(s->n);
    s->v = petal_falloc(s->n);
}

void adamw_free(adamw_state *s) {
    free(s->m);
    free(s->v);
    memset(s, 0, sizeof *s);
}

void adamw_step(adamw_state *s, param_table *t, float lr) {
    const adamw_config *c = &s->cfg;
    s->step++;
    // Same operation order as torch.optim.AdamW (single-tensor path).
    float bc1 = 1.0f - powf(c->beta1, (float)s->step);
    float bc2_sqrt = sqrtf(1.0f - powf(c->beta2, (float)s->step));
    float step_size = lr / bc1;
    for (int i = 0; i < t->nrows; i++) {
        const param_row *r = &t->rows[i];
        if (!r->trainable) continue;
        float *p = t->data + r->offset;
        const float *g = t->grad + r->goff;
        float *m = s->m + r->goff, *v = s->v + r->goff;
        float decay = r->decay ? 1.0f - lr * c->weight_decay : 1.0f;
        size_t n = r->n;
#pragma omp parallel for schedule(static) if (n > 32768)
        for (size_t k = 0; k < n; k++) {
            p[k] *= decay;
            m[k] = c->beta1 * m[k] + (1.0f - c->beta1) * g[k];
            v[k] = c->beta2 * v[k] + (1.0f - c->beta2) * g[k] * g[k];
            float denom = sqrtf(v[k]) / bc2_sqrt + c->eps;
            p[k] -= step_size * m[k] / denom;
        }
    }
}

float cosine_lr(float base_lr, long step, long total_steps) {
    if (total_steps <= 0) return base_lr;
    if (step >= total_steps) return 0.0f;
    return (float)(0.5 * base_lr * (1.0 + cos(M_PI * (double)step / (double)total_steps)));
}
