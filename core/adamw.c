// ==== AdamW and the cosine schedule =============================================
#include "core/adamw.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/ops.h"
#include "core/vmath.h"

adamw_config adamw_defaults(float lr) {
    return (adamw_config){.lr = lr, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f,
                          .weight_decay = 0.1f};
}

void adamw_init(adamw_state *s, const adamw_config *cfg, const param_table *t) {
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->n = t->nmom;
    s->m = petal_falloc(s->n);
    s->v = petal_falloc(s->n);
}

void adamw_free(adamw_state *s) {
    free(s->m);
    free(s->v);
    memset(s, 0, sizeof *s);
}

// p, m, v over [k0, k1) of one row: same operations, in the same order, per
// element as the scalar loop (no contraction in ISO C mode, IEEE sqrt and
// division), so the vector lanes change nothing in the results.
// With clear, each gradient is zeroed once read (while its line is in cache).
// Returns 1 when every gradient read was finite.
static int adamw_range(float *p, float *g, float *m, float *v, size_t k0, size_t k1,
                       float decay, float b1, float b2, float bc2_sqrt, float eps,
                       float step_size, int clear) {
    size_t k = k0;
    const vfloat zero = {0};
    vfloat nf = zero;  // stays 0 unless a gradient is NaN or Inf (g * 0 propagates them)
    for (; k + VL <= k1; k += VL) {
        vfloat gk = vload(g + k), pk = vload(p + k) * decay;
        nf += gk * 0.0f;
        if (clear) vstore(g + k, zero);
        vfloat mk = b1 * vload(m + k) + (1.0f - b1) * gk;
        vfloat vk = b2 * vload(v + k) + (1.0f - b2) * gk * gk;
        vfloat denom = vsqrt(vk) / bc2_sqrt + eps;
        vstore(p + k, pk - step_size * mk / denom);
        vstore(m + k, mk);
        vstore(v + k, vk);
    }
    float tail = 0.0f;
    for (; k < k1; k++) {
        tail += g[k] * 0.0f;
        p[k] *= decay;
        m[k] = b1 * m[k] + (1.0f - b1) * g[k];
        v[k] = b2 * v[k] + (1.0f - b2) * g[k] * g[k];
        float denom = sqrtf(v[k]) / bc2_sqrt + eps;
        p[k] -= step_size * m[k] / denom;
        if (clear) g[k] = 0.0f;
    }
    for (int i = 0; i < VL; i++) tail += nf[i];
    return tail == 0.0f;
}

void adamw_begin(adamw_state *s, float lr) {
    const adamw_config *c = &s->cfg;
    s->step++;
    // Same operation order as torch.optim.AdamW (single-tensor path).
    s->lr = lr;
    s->bc1 = 1.0f - powf(c->beta1, (float)s->step);
    s->bc2_sqrt = sqrtf(1.0f - powf(c->beta2, (float)s->step));
}

int adamw_apply(adamw_state *s, param_table *t, int layer, int clear) {
    const adamw_config *c = &s->cfg;
    double t0 = prof_start();
    float lr = s->lr, step_size = lr / s->bc1;
    size_t n_all = 0;
    for (int i = 0; i < t->nrows; i++)
        if (t->rows[i].trainable && (layer == PARAM_EVERY_LAYER || t->rows[i].layer == layer))
            n_all += t->rows[i].n;
    // One parallel region: every thread takes its static share of each row
    // (no barrier between rows); elements are independent, so the split does
    // not change any result.
    int finite = 1;
#pragma omp parallel if (n_all > 65536) reduction(&& : finite)
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int i = 0; i < t->nrows; i++) {
            const param_row *r = &t->rows[i];
            if (!r->trainable || (layer != PARAM_EVERY_LAYER && r->layer != layer)) continue;
            float decay = r->decay ? 1.0f - lr * c->weight_decay : 1.0f;
            size_t n = r->n, nv = (n + VL - 1) / VL;  // split in whole vectors
            size_t k0 = nv * tid / nt * VL, k1 = nv * (tid + 1) / nt * VL;
            k1 = k1 < n ? k1 : n;
            if (k0 < k1)
                finite = adamw_range(t->data + r->offset, t->grad + r->goff, s->m + r->moff, s->v + r->moff,
                            k0, k1, decay, c->beta1, c->beta2, s->bc2_sqrt, c->eps, step_size,
                            clear) && finite;
        }
    }
    prof_stop(PROF_OPTIMIZER, t0);
    return finite;
}

void adamw_step(adamw_state *s, param_table *t, float lr) {
    adamw_begin(s, lr);
    adamw_apply(s, t, PARAM_EVERY_LAYER, 0);
}

float cosine_lr(float base_lr, long step, long total_steps) {
    if (total_steps <= 0) return base_lr;
    if (step >= total_steps) return 0.0f;
    return (float)(0.5 * base_lr * (1.0 + cos(M_PI * (double)step / (double)total_steps)));
}
