// ==== The AST model: build, forward in layer order, backward in reverse ========
#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/ast.h"

// ---- configuration -------------------------------------------------------------

int ast_fdim(const ast_config *cfg) { return (cfg->F - cfg->patch) / cfg->fstride + 1; }
int ast_tdim(const ast_config *cfg) { return (cfg->frames - cfg->patch) / cfg->tstride + 1; }
int ast_tokens(const ast_config *cfg) { return ast_fdim(cfg) * ast_tdim(cfg) + 2; }

int ast_config_preset(ast_config *cfg, const char *size, int frames, int K, petal_err *err) {
    static const struct {
        const char *name;
        int C, L, NH, MLP, F;
    } presets[] = {
        {"tiny", 64, 2, 4, 256, 32},
        {"small", 256, 4, 4, 1024, 128},
        {"base", 768, 12, 12, 3072, 128},
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(size, presets[i].name)) continue;
        *cfg = (ast_config){.C = presets[i].C, .L = presets[i].L, .NH = presets[i].NH,
                            .MLP = presets[i].MLP, .F = presets[i].F, .frames = frames,
                            .patch = 16, .fstride = 10, .tstride = 10, .K = K,
                            .pool = POOL_ALL, .ln_eps = 1e-12f};
        return ast_config_check(cfg, err);
    }
    return petal_fail(err, PETAL_EINPUT, "unknown model size '%s' (tiny, small, base)", size);
}

int ast_config_check(const ast_config *c, petal_err *err) {
    if (c->C <= 0 || c->L < 0 || c->NH <= 0 || c->MLP <= 0 || c->K < 2 || c->patch <= 0 ||
        c->fstride <= 0 || c->tstride <= 0)
        return petal_fail(err, PETAL_EINPUT,
                          "model sizes must be positive (C=%d L=%d NH=%d MLP=%d K=%d patch=%d "
                          "strides=%d,%d; K >= 2)",
                          c->C, c->L, c->NH, c->MLP, c->K, c->patch, c->fstride, c->tstride);
    if (c->C % c->NH)
        return petal_fail(err, PETAL_EINPUT, "hidden size %d is not divisible by %d heads", c->C,
                          c->NH);
    if (c->C % 16)
        return petal_fail(err, PETAL_EINPUT,
                          "hidden size %d must be a multiple of 16 (tensors are 64-byte aligned)",
                          c->C);
    if (c->F < c->patch || c->frames < c->patch)
        return petal_fail(err, PETAL_EINPUT,
                          "input of %d frames x %d mel bins is smaller than one %dx%d patch",
                          c->frames, c->F, c->patch, c->patch);
    return PETAL_OK;
}

int ast_pool_parse(ast_pool *pool, const char *name, petal_err *err) {
    if (!strcmp(name, "all")) *pool = POOL_ALL;
    else if (!strcmp(name, "cls")) *pool = POOL_CLS;
    else if (!strcmp(name, "cls_dist")) *pool = POOL_CLS_DIST;
    else return petal_fail(err, PETAL_EINPUT, "unknown pooling '%s' (all, cls, cls_dist)", name);
    return PETAL_OK;
}

const char *ast_pool_name(ast_pool pool) {
    return pool == POOL_ALL ? "all" : pool == POOL_CLS ? "cls" : "cls_dist";
}

static const char *const method_names[] = {"full", "linear", "bitfit"};

int ast_method_parse(ast_method *m, const char *name, petal_err *err) {
    for (int i = 0; i < (int)(sizeof method_names / sizeof method_names[0]); i++) {
        if (!strcmp(name, method_names[i])) {
            *m = (ast_method){.base = (ast_base)i};
            return PETAL_OK;
        }
    }
    return petal_fail(err, PETAL_EINPUT, "unknown method '%s' (full, linear, bitfit)", name);
}

const char *ast_method_name(const ast_method *m) { return method_names[m->base]; }

float ast_method_default_lr(const ast_method *m) {
    static const float lr[] = {5e-5f, 1e-3f, 5e-3f};  // full, linear, bitfit
    return lr[m->base];
}

// ---- parameter table ---------------------------------------------------------------

// Does the method train this tensor? kind: 'w' weight, 'b' bias, 'e' embedding
// token/position, 'f' final LayerNorm or head (always trained).
static int trains(const ast_method *m, char kind) {
    if (kind == 'f' || m->base == METHOD_FULL) return 1;
    if (m->base == METHOD_BITFIT) return kind == 'b';
    return 0;
}

// Row indices of one layer's tensors, in buffer order (q, k, v weights adjacent
// so they form the one (3C, C) matrix the fused QKV GEMM reads).
enum { R_LN1_W, R_LN1_B, R_Q_W, R_K_W, R_V_W, R_Q_B, R_K_B, R_V_B, R_O_W, R_O_B,
       R_LN2_W, R_LN2_B, R_FC1_W, R_FC1_B, R_FC2_W, R_FC2_B, R_LAYER_ROWS };

static void add_layer_rows(param_table *t, const ast_config *c, const ast_method *m, int l,
                           int *rows) {
    static const struct {
        const char *suffix;
        char kind;
        int shape;  // 0: (C), 1: (C, C), 2: (MLP, C), 3: (MLP), 4: (C, MLP)
    } spec[R_LAYER_ROWS] = {
        {"layernorm_before.weight", 'w', 0},
        {"layernorm_before.bias", 'b', 0},
        {"attention.attention.query.weight", 'w', 1},
        {"attention.attention.key.weight", 'w', 1},
        {"attention.attention.value.weight", 'w', 1},
        {"attention.attention.query.bias", 'b', 0},
        {"attention.attention.key.bias", 'b', 0},
        {"attention.attention.value.bias", 'b', 0},
        {"attention.output.dense.weight", 'w', 1},
        {"attention.output.dense.bias", 'b', 0},
        {"layernorm_after.weight", 'w', 0},
        {"layernorm_after.bias", 'b', 0},
        {"intermediate.dense.weight", 'w', 2},
        {"intermediate.dense.bias", 'b', 3},
        {"output.dense.weight", 'w', 4},
        {"output.dense.bias", 'b', 0},
    };
    for (int i = 0; i < R_LAYER_ROWS; i++) {
        char name[PARAM_NAME_MAX];
        snprintf(name, sizeof name, "encoder.layer.%d.%s", l, spec[i].suffix);
        int tr = trains(m, spec[i].kind);
        switch (spec[i].shape) {
        case 0: rows[i] = param_add(t, name, l, tr, 1, c->C); break;
        case 1: rows[i] = param_add(t, name, l, tr, 2, c->C, c->C); break;
        case 2: rows[i] = param_add(t, name, l, tr, 2, c->MLP, c->C); break;
        case 3: rows[i] = param_add(t, name, l, tr, 1, c->MLP); break;
        default: rows[i] = param_add(t, name, l, tr, 2, c->C, c->MLP); break;
        }
    }
}

// Fills w (params) and g (grads) from the table rows.
static void bind(ast_tensors *w, ast_tensors *g, const param_table *t, const int *emb,
                 const int *lay, const int *fin, int L) {
    float *(*get[2])(const param_table *, int) = {param_data, param_grad};
    ast_tensors *dst[2] = {w, g};
    for (int k = 0; k < 2; k++) {
        ast_tensors *d = dst[k];
        d->patch_w = get[k](t, emb[0]);
        d->patch_b = get[k](t, emb[1]);
        d->cls = get[k](t, emb[2]);
        d->dist = get[k](t, emb[3]);
        d->pos = get[k](t, emb[4]);
        for (int l = 0; l < L; l++) {
            const int *r = lay + l * R_LAYER_ROWS;
            ast_layer_tensors *x = &d->layer[l];
            *x = (ast_layer_tensors){
                .ln1_w = get[k](t, r[R_LN1_W]), .ln1_b = get[k](t, r[R_LN1_B]),
                .qkv_w = get[k](t, r[R_Q_W]), .qkv_b = get[k](t, r[R_Q_B]),
                .o_w = get[k](t, r[R_O_W]), .o_b = get[k](t, r[R_O_B]),
                .ln2_w = get[k](t, r[R_LN2_W]), .ln2_b = get[k](t, r[R_LN2_B]),
                .fc1_w = get[k](t, r[R_FC1_W]), .fc1_b = get[k](t, r[R_FC1_B]),
                .fc2_w = get[k](t, r[R_FC2_W]), .fc2_b = get[k](t, r[R_FC2_B]),
            };
            // The fused QKV GEMM reads three rows as one tensor: they must be
            // adjacent and share the trainable flag (in data and in grad).
            for (int q = 1; q < 3; q++) {
                PETAL_ASSERT(get[k](t, r[R_Q_W + q]) ==
                             (x->qkv_w ? x->qkv_w + (size_t)q * t->rows[r[R_Q_W]].n : NULL));
            }
            for (int q = 1; q < 3; q++)
                PETAL_ASSERT(get[k](t, r[R_Q_B + q]) ==
                             (x->qkv_b ? x->qkv_b + (size_t)q * t->rows[r[R_Q_B]].n : NULL));
        }
        d->lnf_w = get[k](t, fin[0]);
        d->lnf_b = get[k](t, fin[1]);
        d->head_w = get[k](t, fin[2]);
        d->head_b = get[k](t, fin[3]);
    }
}

// ---- activation arena --------------------------------------------------------------

static void carve(ast_model *m, int alloc) {
    const ast_config *c = &m->cfg;
    size_t B = (size_t)m->Bm, T = (size_t)m->T, C = (size_t)c->C, L = (size_t)c->L;
    size_t NH = (size_t)c->NH, MLP = (size_t)c->MLP, K = (size_t)c->K;
    size_t BT = B * T, off = 0;
    ast_acts *a = &m->a;
    // Each field rounded to 16 floats (64 bytes) to keep vector loads aligned.
#define FIELD(f, n) (a->f = m->arena + off, off += ((size_t)(n) + 15) / 16 * 16)
    if (alloc) m->arena = NULL;  // first pass only measures
    FIELD(cols, B * m->NP * m->PP);
    FIELD(res, (L + 1) * BT * C);
    FIELD(ln1, L * BT * C);
    FIELD(mean1, L * BT);
    FIELD(rstd1, L * BT);
    FIELD(qkv, L * BT * 3 * C);
    FIELD(att, L * B * NH * T * T);
    FIELD(atty, L * BT * C);
    FIELD(res2, L * BT * C);
    FIELD(ln2, L * BT * C);
    FIELD(mean2, L * BT);
    FIELD(rstd2, L * BT);
    FIELD(fc1, L * BT * MLP);
    FIELD(gel, L * BT * MLP);
    FIELD(lnf, BT * C);
    FIELD(meanf, BT);
    FIELD(rstdf, BT);
    FIELD(pooled, B * C);
    FIELD(logits, B * K);
    FIELD(probs, B * K);
    FIELD(dres, BT * C);
    FIELD(dln, BT * C);
    FIELD(datty, BT * C);
    FIELD(dqkv, BT * 3 * C);
    FIELD(dfc, BT * MLP);
    FIELD(datt, T * T);
    FIELD(dpooled, B * C);
    FIELD(dlogits, B * K);
#undef FIELD
    m->arena_floats = off;
}

int ast_model_init(ast_model *m, const ast_config *cfg, const ast_method *method, int max_batch,
                   petal_err *err) {
    memset(m, 0, sizeof *m);
    int st = ast_config_check(cfg, err);
    if (st) return st;
    if (max_batch <= 0) return petal_fail(err, PETAL_EINPUT, "batch size must be positive");
    m->cfg = *cfg;
    m->method = *method;
    m->Bm = max_batch;
    m->NP = ast_fdim(cfg) * ast_tdim(cfg);
    m->T = m->NP + 2;
    m->PP = cfg->patch * cfg->patch;
    const ast_config *c = cfg;
    param_table *t = &m->params;
    int emb[5], fin[4];
    int *lay = petal_malloc(sizeof(int) * R_LAYER_ROWS * (size_t)(c->L ? c->L : 1));
    emb[2] = param_add(t, "embeddings.cls_token", -1, trains(method, 'e'), 3, 1, 1, c->C);
    emb[3] = param_add(t, "embeddings.distillation_token", -1, trains(method, 'e'), 3, 1, 1, c->C);
    emb[4] = param_add(t, "embeddings.position_embeddings", -1, trains(method, 'e'), 3, 1, m->T,
                       c->C);
    emb[0] = param_add(t, "embeddings.patch_embeddings.projection.weight", -1, trains(method, 'w'),
                       4, c->C, 1, c->patch, c->patch);
    emb[1] = param_add(t, "embeddings.patch_embeddings.projection.bias", -1, trains(method, 'b'), 1,
                       c->C);
    for (int l = 0; l < c->L; l++) add_layer_rows(t, c, method, l, lay + l * R_LAYER_ROWS);
    fin[0] = param_add(t, "layernorm.weight", c->L, 1, 1, c->C);
    fin[1] = param_add(t, "layernorm.bias", c->L, 1, 1, c->C);
    fin[2] = param_add(t, "classifier.dense.weight", c->L, 1, 2, c->K, c->C);
    fin[3] = param_add(t, "classifier.dense.bias", c->L, 1, 1, c->K);
    param_table_alloc(t);
    m->w.layer = petal_calloc((size_t)(c->L ? c->L : 1), sizeof(ast_layer_tensors));
    m->g.layer = petal_calloc((size_t)(c->L ? c->L : 1), sizeof(ast_layer_tensors));
    bind(&m->w, &m->g, t, emb, lay, fin, c->L);
    free(lay);
    int lo = param_lowest_trainable_layer(t);
    m->bw_floor = lo == INT_MAX ? c->L : lo;
    carve(m, 1);  // measure
    m->arena = petal_falloc(m->arena_floats);
    carve(m, 0);  // point the fields into the arena
    return PETAL_OK;
}

void ast_model_free(ast_model *m) {
    param_table_free(&m->params);
    free(m->w.layer);
    free(m->g.layer);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

void ast_init_weights(ast_model *m, uint64_t seed) {
    petal_rng rng;
    petal_rng_seed(&rng, seed);
    param_table *t = &m->params;
    for (int i = 0; i < t->nrows; i++) {
        const param_row *r = &t->rows[i];
        float *d = param_data(t, i);
        const char *name = r->name;
        size_t len = strlen(name);
        int is_bias = len > 5 && !strcmp(name + len - 5, ".bias");
        int is_ln = strstr(name, "layernorm") != NULL;
        for (size_t k = 0; k < r->n; k++) {
            if (is_bias) d[k] = 0.0f;
            else if (is_ln) d[k] = 1.0f;
            else {
                double z;
                do z = petal_rng_normal(&rng);
                while (fabs(z) > 2.0);
                d[k] = (float)(0.02 * z);
            }
        }
    }
}

// ---- forward -------------------------------------------------------------------------

double ast_forward(ast_model *m, const float *fbank, const int *labels, int B, int *correct) {
    const ast_config *c = &m->cfg;
    PETAL_ASSERT(B > 0 && B <= m->Bm);
    int T = m->T, C = c->C, NH = c->NH, MLP = c->MLP, N = B * T;
    size_t BTm = (size_t)m->Bm * T;  // per-layer stride of the activation fields
    ast_acts *a = &m->a;
    patch_im2col(a->cols, fbank, B, c->frames, c->F, c->patch, c->fstride, c->tstride);
    embed_forward(a->res, a->cols, m->w.patch_w, m->w.patch_b, m->w.cls, m->w.dist, m->w.pos, B,
                  m->NP, m->PP, C);
    for (int l = 0; l < c->L; l++) {
        const ast_layer_tensors *w = &m->w.layer[l];
        float *x = a->res + l * BTm * C, *h = a->res2 + l * BTm * C;
        float *ln1 = a->ln1 + l * BTm * C, *ln2 = a->ln2 + l * BTm * C;
        float *qkv = a->qkv + l * BTm * 3 * C, *atty = a->atty + l * BTm * C;
        float *att = a->att + l * (size_t)m->Bm * NH * T * T;
        float *fc1 = a->fc1 + l * BTm * MLP, *gel = a->gel + l * BTm * MLP;
        float *out = a->res + (l + 1) * BTm * C;
        layernorm_forward(ln1, a->mean1 + l * BTm, a->rstd1 + l * BTm, x, w->ln1_w, w->ln1_b,
                          c->ln_eps, N, C);
        linear_forward(qkv, ln1, w->qkv_w, w->qkv_b, N, C, 3 * C);
        attention_forward(atty, att, qkv, B, T, C, NH);
        linear_forward(h, atty, w->o_w, w->o_b, N, C, C);
        for (size_t i = 0; i < (size_t)N * C; i++) h[i] += x[i];
        layernorm_forward(ln2, a->mean2 + l * BTm, a->rstd2 + l * BTm, h, w->ln2_w, w->ln2_b,
                          c->ln_eps, N, C);
        linear_forward(fc1, ln2, w->fc1_w, w->fc1_b, N, C, MLP);
        gelu_forward(gel, fc1, (size_t)N * MLP);
        linear_forward(out, gel, w->fc2_w, w->fc2_b, N, MLP, C);
        for (size_t i = 0; i < (size_t)N * C; i++) out[i] += h[i];
    }
    float *enc = a->res + (size_t)c->L * BTm * C;
    layernorm_forward(a->lnf, a->meanf, a->rstdf, enc, m->w.lnf_w, m->w.lnf_b, c->ln_eps, N, C);
    pool_forward(a->pooled, a->lnf, c->pool, B, T, C);
    linear_forward(a->logits, a->pooled, m->w.head_w, m->w.head_b, B, C, c->K);
    if (!labels) return 0.0;
    return crossentropy_forward(a->probs, correct, a->logits, labels, B, c->K);
}

// ---- backward ------------------------------------------------------------------------

void ast_backward(ast_model *m, const int *labels, int B) {
    const ast_config *c = &m->cfg;
    int T = m->T, C = c->C, NH = c->NH, MLP = c->MLP, N = B * T;
    size_t BTm = (size_t)m->Bm * T;
    ast_acts *a = &m->a;
    const ast_tensors *g = &m->g;
    if (m->params.ngrad) memset(m->params.grad, 0, m->params.ngrad * sizeof(float));

    crossentropy_backward(a->dlogits, a->probs, labels, B, c->K);
    linear_backward(a->dpooled, g->head_w, g->head_b, a->dlogits, a->pooled, m->w.head_w, B, C,
                    c->K);
    pool_backward(a->dln, a->dpooled, c->pool, B, T, C);
    int below = m->bw_floor < c->L;  // does anything under the final LayerNorm train?
    float *enc = a->res + (size_t)c->L * BTm * C;
    if (below) memset(a->dres, 0, (size_t)N * C * sizeof(float));
    layernorm_backward(below ? a->dres : NULL, g->lnf_w, g->lnf_b, a->dln, enc, m->w.lnf_w,
                       a->meanf, a->rstdf, N, C);

    // a->dres holds the gradient of the residual stream leaving layer l.
    for (int l = c->L - 1; l >= 0 && l >= m->bw_floor; l--) {
        const ast_layer_tensors *w = &m->w.layer[l], *gl = &g->layer[l];
        int need_dx = l > m->bw_floor;  // does a layer below (or the embedding) train?
        float *x = a->res + l * BTm * C, *h = a->res2 + l * BTm * C;
        float *ln1 = a->ln1 + l * BTm * C, *ln2 = a->ln2 + l * BTm * C;
        float *qkv = a->qkv + l * BTm * 3 * C, *atty = a->atty + l * BTm * C;
        float *att = a->att + l * (size_t)m->Bm * NH * T * T;
        float *fc1 = a->fc1 + l * BTm * MLP, *gel = a->gel + l * BTm * MLP;
        // MLP: out = h + fc2(gelu(fc1(ln2(h))))
        linear_backward(a->dfc, gl->fc2_w, gl->fc2_b, a->dres, gel, w->fc2_w, N, MLP, C);
        gelu_backward(a->dfc, a->dfc, fc1, (size_t)N * MLP);
        linear_backward(a->dln, gl->fc1_w, gl->fc1_b, a->dfc, ln2, w->fc1_w, N, C, MLP);
        layernorm_backward(a->dres, gl->ln2_w, gl->ln2_b, a->dln, h, w->ln2_w,
                           a->mean2 + l * BTm, a->rstd2 + l * BTm, N, C);
        // attention: h = x + o(attn(qkv(ln1(x))))
        linear_backward(a->datty, gl->o_w, gl->o_b, a->dres, atty, w->o_w, N, C, C);
        attention_backward(a->dqkv, a->datt, a->datty, qkv, att, B, T, C, NH);
        int need_dln1 = need_dx || gl->ln1_w || gl->ln1_b;
        linear_backward(need_dln1 ? a->dln : NULL, gl->qkv_w, gl->qkv_b, a->dqkv, ln1, w->qkv_w, N,
                        C, 3 * C);
        if (need_dln1)
            layernorm_backward(need_dx ? a->dres : NULL, gl->ln1_w, gl->ln1_b, a->dln, x,
                               w->ln1_w, a->mean1 + l * BTm, a->rstd1 + l * BTm, N, C);
    }
    if (m->bw_floor < 0)
        embed_backward(g->patch_w, g->patch_b, g->cls, g->dist, g->pos, a->dres, a->cols, B, m->NP,
                       m->PP, C);
}
