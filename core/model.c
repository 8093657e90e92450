// ==== The AST model: build, forward in layer order, backward in reverse ========
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>

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

static const char *const pool_names[] = {"all", "cls", "cls_dist", "prompts", "speech",
                                         "prompts+speech"};

int ast_pool_parse(ast_pool *pool, const char *name, petal_err *err) {
    for (int i = 0; i < (int)(sizeof pool_names / sizeof pool_names[0]); i++) {
        if (!strcmp(name, pool_names[i])) {
            *pool = (ast_pool)i;
            return PETAL_OK;
        }
    }
    return petal_fail(err, PETAL_EINPUT,
                      "unknown pooling '%s' (all, cls, cls_dist, prompts, speech, prompts+speech)",
                      name);
}

const char *ast_pool_name(ast_pool pool) { return pool_names[pool]; }

// ---- parameter table ---------------------------------------------------------------

// A row and where its data and gradient pointers go once the table is laid out.
typedef struct {
    int row;
    float **w, **g;
} binding;

typedef struct {
    ast_model *m;
    binding *b;
    int nb, cap;
} builder;

// Registers a tensor: slot (forward position), trainable, backbone flag, init
// rule and scale, shape, name (printf-style); w / g receive the pointers.
static int add(builder *bd, float **w, float **g, int slot, int trainable, int backbone,
               int init, float scale, int ndim, int d0, int d1, int d2, int d3, const char *fmt,
               ...) __attribute__((format(printf, 14, 15)));
static int add(builder *bd, float **w, float **g, int slot, int trainable, int backbone,
               int init, float scale, int ndim, int d0, int d1, int d2, int d3, const char *fmt,
               ...) {
    char name[PARAM_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int shape[4] = {d0, d1, d2, d3};
    param_table *t = &bd->m->params;
    int r = param_add(t, name, slot, trainable, ndim, shape);
    t->rows[r].backbone = (unsigned char)backbone;
    t->rows[r].init = (unsigned char)init;
    t->rows[r].init_scale = scale;
    if (bd->nb == bd->cap) {
        bd->cap = bd->cap ? 2 * bd->cap : 256;
        binding *nb = realloc(bd->b, (size_t)bd->cap * sizeof *nb);
        PETAL_ASSERT(nb);
        bd->b = nb;
    }
    bd->b[bd->nb++] = (binding){r, w, g};
    return r;
}

// Does the base method train this backbone tensor? kind: 'w' weight, 'b' bias
// of a Linear or LayerNorm, 'p' the patch projection's bias (a Conv2d: the
// reference's BitFit leaves it frozen), 'e' embedding token/position.
static int base_trains(const ast_method *m, char kind) {
    if (m->base == METHOD_FULL) return 1;
    if (m->base == METHOD_BITFIT) return kind == 'b';
    if (m->base == METHOD_BITFIT_PETAL) return kind == 'b' || kind == 'p';
    return 0;
}

#define TRUNC PARAM_INIT_TRUNC_NORMAL, 0.02f
#define ZERO PARAM_INIT_ZERO, 0.0f
#define ONE PARAM_INIT_ONE, 0.0f
#define UNIF(b) PARAM_INIT_UNIFORM, (float)(b)

static void add_adapter(builder *bd, adapter_tensors *w, adapter_tensors *g, int l, int site,
                        const adapter_config *ad, int C, int D) {
    int slot = 2 * l + site;
    const char *s = site ? "ffn" : "mhsa";
    float kaim = 1.0f / sqrtf((float)C);  // kaiming_uniform(a=sqrt(5)) bound: 1/sqrt(fan_in)
    if (ad->block == BLOCK_BOTTLENECK) {
        if (ad->init_reference)
            add(bd, &w->down_w, &g->down_w, slot, 1, 0, ZERO, 2, D, C, 0, 0,
                "encoder.layer.%d.adapter_%s.down.weight", l, s);
        else
            add(bd, &w->down_w, &g->down_w, slot, 1, 0, UNIF(kaim), 2, D, C, 0, 0,
                "encoder.layer.%d.adapter_%s.down.weight", l, s);
        add(bd, &w->down_b, &g->down_b, slot, 1, 0, ZERO, 1, D, 0, 0, 0,
            "encoder.layer.%d.adapter_%s.down.bias", l, s);
        add(bd, &w->up_w, &g->up_w, slot, 1, 0, ZERO, 2, C, D, 0, 0,
            "encoder.layer.%d.adapter_%s.up.weight", l, s);
        add(bd, &w->up_b, &g->up_b, slot, 1, 0, ZERO, 1, C, 0, 0, 0,
            "encoder.layer.%d.adapter_%s.up.bias", l, s);
        return;
    }
    int k = ad->kernel;
    float kk = 1.0f / sqrtf((float)k);
    if (ad->norm_discarded) {
        // The reference's LayerNorm: it exists and counts as trainable, but its
        // output is discarded, so it gets no gradient and never changes. No
        // pointers bound: adapter_forward sees norm_w == NULL and skips it.
        for (int i = 0; i < 2; i++) {
            int r = add(bd, NULL, NULL, slot, 0, 0, i ? PARAM_INIT_ZERO : PARAM_INIT_ONE, 0.0f, 1, C, 0, 0, 0,
                        "encoder.layer.%d.adapter_%s.norm.%s", l, s, i ? "bias" : "weight");
            bd->m->params.rows[r].inert = 1;
        }
    } else {
        add(bd, &w->norm_w, &g->norm_w, slot, 1, 0, ONE, 1, C, 0, 0, 0,
            "encoder.layer.%d.adapter_%s.norm.weight", l, s);
        add(bd, &w->norm_b, &g->norm_b, slot, 1, 0, ZERO, 1, C, 0, 0, 0,
            "encoder.layer.%d.adapter_%s.norm.bias", l, s);
    }
    add(bd, &w->pw1_w, &g->pw1_w, slot, 1, 0, UNIF(kaim), 2, 2 * D, C, 0, 0,
        "encoder.layer.%d.adapter_%s.pw1.weight", l, s);
    add(bd, &w->pw1_b, &g->pw1_b, slot, 1, 0, UNIF(kaim), 1, 2 * D, 0, 0, 0,
        "encoder.layer.%d.adapter_%s.pw1.bias", l, s);
    add(bd, &w->dw_w, &g->dw_w, slot, 1, 0, UNIF(kk), 3, D, 1, k, 0,
        "encoder.layer.%d.adapter_%s.dw.weight", l, s);
    add(bd, &w->dw_b, &g->dw_b, slot, 1, 0, UNIF(kk), 1, D, 0, 0, 0,
        "encoder.layer.%d.adapter_%s.dw.bias", l, s);
    add(bd, &w->bn_w, &g->bn_w, slot, 1, 0, ONE, 1, D, 0, 0, 0,
        "encoder.layer.%d.adapter_%s.bn.weight", l, s);
    add(bd, &w->bn_b, &g->bn_b, slot, 1, 0, ZERO, 1, D, 0, 0, 0,
        "encoder.layer.%d.adapter_%s.bn.bias", l, s);
    int r = add(bd, &w->bn_mean, NULL, slot, 0, 0, ZERO, 1, D, 0, 0, 0,
                "encoder.layer.%d.adapter_%s.bn.running_mean", l, s);
    bd->m->params.rows[r].buffer = 1;
    r = add(bd, &w->bn_var, NULL, slot, 0, 0, ONE, 1, D, 0, 0, 0,
            "encoder.layer.%d.adapter_%s.bn.running_var", l, s);
    bd->m->params.rows[r].buffer = 1;
    // petal: zero (the adapter starts neutral); reference: torch's Conv1d default,
    // U(+-1/sqrt(D)) for weight and bias (the model starts away from the backbone).
    float pw2 = 1.0f / sqrtf((float)D);
    if (ad->init_reference) {
        add(bd, &w->pw2_w, &g->pw2_w, slot, 1, 0, UNIF(pw2), 2, C, D, 0, 0,
            "encoder.layer.%d.adapter_%s.pw2.weight", l, s);
        add(bd, &w->pw2_b, &g->pw2_b, slot, 1, 0, UNIF(pw2), 1, C, 0, 0, 0,
            "encoder.layer.%d.adapter_%s.pw2.bias", l, s);
    } else {
        add(bd, &w->pw2_w, &g->pw2_w, slot, 1, 0, ZERO, 2, C, D, 0, 0,
            "encoder.layer.%d.adapter_%s.pw2.weight", l, s);
        add(bd, &w->pw2_b, &g->pw2_b, slot, 1, 0, ZERO, 1, C, 0, 0, 0,
            "encoder.layer.%d.adapter_%s.pw2.bias", l, s);
    }
}

static void add_moa(builder *bd, moa_tensors *w, moa_tensors *g, int l, int site,
                    const moa_config *mo, int C, int D) {
    int slot = 2 * l + site, E = mo->experts, S = mo->slots;
    const char *s = site ? "ffn" : "mhsa";
    float kaim = 1.0f / sqrtf((float)C);
    w->experts = petal_calloc((size_t)E, sizeof(adapter_tensors));
    g->experts = petal_calloc((size_t)E, sizeof(adapter_tensors));
    for (int e = 0; e < E; e++) {
        adapter_tensors *x = &w->experts[e], *gx = &g->experts[e];
        if (mo->init_reference)
            add(bd, &x->down_w, &gx->down_w, slot, 1, 0, ZERO, 2, D, C, 0, 0,
                "encoder.layer.%d.moa_%s.experts.%d.down.weight", l, s, e);
        else
            add(bd, &x->down_w, &gx->down_w, slot, 1, 0, UNIF(kaim), 2, D, C, 0, 0,
                "encoder.layer.%d.moa_%s.experts.%d.down.weight", l, s, e);
        add(bd, &x->down_b, &gx->down_b, slot, 1, 0, ZERO, 1, D, 0, 0, 0,
            "encoder.layer.%d.moa_%s.experts.%d.down.bias", l, s, e);
        add(bd, &x->up_w, &gx->up_w, slot, 1, 0, ZERO, 2, C, D, 0, 0,
            "encoder.layer.%d.moa_%s.experts.%d.up.weight", l, s, e);
        add(bd, &x->up_b, &gx->up_b, slot, 1, 0, ZERO, 1, C, 0, 0, 0,
            "encoder.layer.%d.moa_%s.experts.%d.up.bias", l, s, e);
    }
    if (mo->kind == MOA_DENSE) {
        add(bd, &w->router_w, &g->router_w, slot, 1, 0, UNIF(kaim), 2, E, C, 0, 0,
            "encoder.layer.%d.moa_%s.router.weight", l, s);
        add(bd, &w->router_b, &g->router_b, slot, 1, 0, UNIF(kaim), 1, E, 0, 0, 0,
            "encoder.layer.%d.moa_%s.router.bias", l, s);
    } else {
        add(bd, &w->slots, &g->slots, slot, 1, 0, PARAM_INIT_NORMAL,
            sqrtf(2.0f / (float)(E * S + C * S)), 3, C, E, S, 0, "encoder.layer.%d.moa_%s.slots",
            l, s);
    }
}

void ast_param_counts(const ast_model *m, size_t *trainable, size_t *paper, size_t *total) {
    const param_table *t = &m->params;
    int bitfit = m->method.base == METHOD_BITFIT || m->method.base == METHOD_BITFIT_PETAL;
    size_t tr = param_count(t, 1), head = 0;  // head: classifier + final LN rows excluded
    for (int i = 0; i < t->nrows; i++) {
        const param_row *r = &t->rows[i];
        if (!r->trainable && !r->inert) continue;
        int final_ln = !strcmp(r->name, "layernorm.weight") || !strcmp(r->name, "layernorm.bias");
        if (!strncmp(r->name, "classifier.", 11) ||
            (final_ln && !(bitfit && !strcmp(r->name, "layernorm.bias"))))
            head += r->n;
    }
    *trainable = tr;
    *paper = head == tr ? tr : tr - head;  // linear probing counts its head
    *total = param_count(t, 0);
}

static void build_table(ast_model *m) {
    const ast_config *c = &m->cfg;
    const ast_method *me = &m->method;
    ast_tensors *w = &m->w, *g = &m->g;
    builder bd = {.m = m};
    int C = c->C, L = c->L;
    const adapter_config *ad = &me->adapter;
    const moa_config *mo = &me->moa;
    int has_moa = mo->kind != MOA_NONE;
    // adapters and mixtures train their site's LayerNorm
    int ln1_hook = ad->at_mhsa || (has_moa && mo->at_mhsa);
    int ln2_hook = ad->at_ffn || (has_moa && mo->at_ffn);
    float pv = sqrtf(6.0f / (3.0f * c->patch * c->patch + C));  // prompt / prefix init bound

    add(&bd, &w->cls, &g->cls, -1, base_trains(me, 'e'), 1, TRUNC, 3, 1, 1, C, 0,
        "embeddings.cls_token");
    add(&bd, &w->dist, &g->dist, -1, base_trains(me, 'e') && !m->NPR, 1, TRUNC, 3, 1, 1, C, 0,
        "embeddings.distillation_token");
    add(&bd, &w->pos, &g->pos, -1, base_trains(me, 'e'), 1, TRUNC, 3, 1, m->NP + 2, C, 0,
        "embeddings.position_embeddings");
    add(&bd, &w->patch_w, &g->patch_w, -1, base_trains(me, 'w'), 1, TRUNC, 4, C, 1, c->patch,
        c->patch, "embeddings.patch_embeddings.projection.weight");
    add(&bd, &w->patch_b, &g->patch_b, -1, base_trains(me, 'p'), 1, ZERO, 1, C, 0, 0, 0,
        "embeddings.patch_embeddings.projection.bias");
    if (m->NPR) {
        add(&bd, &w->prompt, &g->prompt, -1, 1, 0, UNIF(pv), 3, 1, m->NPR, C, 0,
            "prompt.embeddings");
        // Deep prompt i replaces the output of layer i, so it sits in slot 2i+1.
        if (me->prompt.deep && L > 1)
            add(&bd, &w->deep, &g->deep, 1, 1, 0, UNIF(pv), 3, L - 1, m->NPR, C, 0,
                "prompt.deep_embeddings");
    }
    static const char qkvn[3][6] = {"query", "key", "value"};
    for (int l = 0; l < L; l++) {
        ast_layer_tensors *lw = &w->layer[l], *lg = &g->layer[l];
        int s0 = 2 * l, s1 = 2 * l + 1;
        int tw = base_trains(me, 'w'), tb = base_trains(me, 'b');
        add(&bd, &lw->ln1_w, &lg->ln1_w, s0, tw || ln1_hook, 1, ONE, 1, C, 0, 0, 0,
            "encoder.layer.%d.layernorm_before.weight", l);
        add(&bd, &lw->ln1_b, &lg->ln1_b, s0, tb || ln1_hook, 1, ZERO, 1, C, 0, 0, 0,
            "encoder.layer.%d.layernorm_before.bias", l);
        for (int q = 0; q < 3; q++)  // adjacent: the fused QKV GEMM reads them as one (3C, C)
            add(&bd, q ? NULL : &lw->qkv_w, q ? NULL : &lg->qkv_w, s0, tw, 1, TRUNC, 2, C, C, 0, 0,
                "encoder.layer.%d.attention.attention.%s.weight", l, qkvn[q]);
        for (int q = 0; q < 3; q++)
            add(&bd, q ? NULL : &lw->qkv_b, q ? NULL : &lg->qkv_b, s0, tb, 1, ZERO, 1, C, 0, 0, 0,
                "encoder.layer.%d.attention.attention.%s.bias", l, qkvn[q]);
        add(&bd, &lw->o_w, &lg->o_w, s0, tw, 1, TRUNC, 2, C, C, 0, 0,
            "encoder.layer.%d.attention.output.dense.weight", l);
        add(&bd, &lw->o_b, &lg->o_b, s0, tb, 1, ZERO, 1, C, 0, 0, 0,
            "encoder.layer.%d.attention.output.dense.bias", l);
        add(&bd, &lw->ln2_w, &lg->ln2_w, s1, tw || ln2_hook, 1, ONE, 1, C, 0, 0, 0,
            "encoder.layer.%d.layernorm_after.weight", l);
        add(&bd, &lw->ln2_b, &lg->ln2_b, s1, tb || ln2_hook, 1, ZERO, 1, C, 0, 0, 0,
            "encoder.layer.%d.layernorm_after.bias", l);
        add(&bd, &lw->fc1_w, &lg->fc1_w, s1, tw, 1, TRUNC, 2, c->MLP, C, 0, 0,
            "encoder.layer.%d.intermediate.dense.weight", l);
        add(&bd, &lw->fc1_b, &lg->fc1_b, s1, tb, 1, ZERO, 1, c->MLP, 0, 0, 0,
            "encoder.layer.%d.intermediate.dense.bias", l);
        add(&bd, &lw->fc2_w, &lg->fc2_w, s1, tw, 1, TRUNC, 2, C, c->MLP, 0, 0,
            "encoder.layer.%d.output.dense.weight", l);
        add(&bd, &lw->fc2_b, &lg->fc2_b, s1, tb, 1, ZERO, 1, C, 0, 0, 0,
            "encoder.layer.%d.output.dense.bias", l);
        // ---- hooks
        int r = me->lora.rank;
        static const char *lora_at[4] = {"attention.attention.query", "attention.attention.key",
                                         "attention.attention.value", "attention.output.dense"};
        for (int t = 0; t < 4; t++) {
            if (!(me->lora.targets & (1u << t))) continue;
            float a_bound = 1.0f / sqrtf((float)C), b_bound = 1.0f / sqrtf((float)r);
            if (me->lora.init_paper) {
                add(&bd, &lw->lora_a[t], &lg->lora_a[t], s0, 1, 0, UNIF(a_bound), 2, r, C, 0, 0,
                    "encoder.layer.%d.%s.lora_A.weight", l, lora_at[t]);
                add(&bd, &lw->lora_b[t], &lg->lora_b[t], s0, 1, 0, ZERO, 2, C, r, 0, 0,
                    "encoder.layer.%d.%s.lora_B.weight", l, lora_at[t]);
            } else {
                add(&bd, &lw->lora_a[t], &lg->lora_a[t], s0, 1, 0, ZERO, 2, r, C, 0, 0,
                    "encoder.layer.%d.%s.lora_A.weight", l, lora_at[t]);
                add(&bd, &lw->lora_b[t], &lg->lora_b[t], s0, 1, 0, UNIF(b_bound), 2, C, r, 0, 0,
                    "encoder.layer.%d.%s.lora_B.weight", l, lora_at[t]);
            }
        }
        if (m->PK) {
            add(&bd, &lw->prefix_k, &lg->prefix_k, s0, 1, 0, UNIF(pv), 3, 1, m->PK, C, 0,
                "encoder.layer.%d.prefix.key", l);
            add(&bd, &lw->prefix_v, &lg->prefix_v, s0, 1, 0, UNIF(pv), 3, 1, m->PK, C, 0,
                "encoder.layer.%d.prefix.value", l);
        }
        if (ad->at_mhsa) add_adapter(&bd, &lw->ad[0], &lg->ad[0], l, 0, ad, C, m->AD);
        if (ad->at_ffn) add_adapter(&bd, &lw->ad[1], &lg->ad[1], l, 1, ad, C, m->AD);
        if (has_moa && mo->at_mhsa) add_moa(&bd, &lw->moa[0], &lg->moa[0], l, 0, mo, C, m->MD);
        if (has_moa && mo->at_ffn) add_moa(&bd, &lw->moa[1], &lg->moa[1], l, 1, mo, C, m->MD);
    }
    // The final LayerNorm trains in every method (linear probing's part of each
    // hook method), except its weight under the reference's BitFit alone.
    int hooks = me->lora.targets || ad->at_mhsa || ad->at_ffn || me->prompt.tokens ||
                me->prefix.tokens || has_moa;
    add(&bd, &w->lnf_w, &g->lnf_w, 2 * L, me->base != METHOD_BITFIT || hooks, 1, ONE, 1, C, 0,
        0, 0, "layernorm.weight");
    add(&bd, &w->lnf_b, &g->lnf_b, 2 * L, 1, 1, ZERO, 1, C, 0, 0, 0, "layernorm.bias");
    if (c->head_ln) {
        add(&bd, &w->hln_w, &g->hln_w, 2 * L, 1, 0, ONE, 1, C, 0, 0, 0,
            "classifier.layernorm.weight");
        add(&bd, &w->hln_b, &g->hln_b, 2 * L, 1, 0, ZERO, 1, C, 0, 0, 0,
            "classifier.layernorm.bias");
    }
    add(&bd, &w->head_w, &g->head_w, 2 * L, 1, 0, TRUNC, 2, c->K, C, 0, 0,
        "classifier.dense.weight");
    add(&bd, &w->head_b, &g->head_b, 2 * L, 1, 0, ZERO, 1, c->K, 0, 0, 0,
        "classifier.dense.bias");

    param_table *t = &m->params;
    param_table_alloc(t);
    for (int i = 0; i < bd.nb; i++) {
        if (bd.b[i].w) *bd.b[i].w = param_data(t, bd.b[i].row);
        if (bd.b[i].g) *bd.b[i].g = param_grad(t, bd.b[i].row);
    }
    // The fused QKV GEMM reads query/key/value as one tensor: they must be
    // adjacent in data and in grad (table order = buffer order, C % 16 == 0).
    for (int i = 0; i < bd.nb; i++) {
        const char *n = t->rows[bd.b[i].row].name;
        // the query's own weight and bias, not its LoRA rows (which share the prefix)
        if (!strstr(n, "attention.attention.query.") || strstr(n, ".lora_")) continue;
        for (int q = 1; q < 3; q++) {
            int r0 = bd.b[i].row, rq = r0 + q;
            PETAL_ASSERT(param_data(t, rq) == param_data(t, r0) + (size_t)q * t->rows[r0].n);
            PETAL_ASSERT(t->rows[rq].trainable == t->rows[r0].trainable);
            if (t->rows[r0].trainable)
                PETAL_ASSERT(param_grad(t, rq) == param_grad(t, r0) + (size_t)q * t->rows[r0].n);
        }
    }
    free(bd.b);
}

// ---- activation arena --------------------------------------------------------------

static int has_moa_at(const ast_model *m, int s) {
    const moa_config *mo = &m->method.moa;
    return mo->kind != MOA_NONE && (s ? mo->at_ffn : mo->at_mhsa);
}

static int has_adapter_at(const ast_model *m, int s) {
    const adapter_config *adc = &m->method.adapter;
    return s ? adc->at_ffn : adc->at_mhsa;
}

// What the backward of site s (0 MHSA, 1 FFN) of layer l reads; all zero
// below the floor. Decides which activations a layer keeps.
typedef struct {
    int visited;    // the backward processes this site
    int need_dx;    // it passes a gradient to the site's input (something lower trains)
    int need_dln;   // it needs the gradient of the LayerNorm output (dx or LN parameters)
    int need_ln;    // it reads the LayerNorm output (weight gradients, adapters, mixtures)
    int need_x;     // it reads the site input (LayerNorm backward, or rebuilding ln)
    int need_sub;   // it runs the sublayer below its output projection: MHSA: attention
                    // (keeps qkv, lse); FFN: GELU (keeps fc1)
    int need_atty;  // MHSA: the attention output (o's weight gradient, LoRA on o)
    int seq_before; // a sequential-before adapter feeds the sublayer
} site_plan;

static site_plan plan_site(const ast_model *m, int l, int s) {
    site_plan p = {0};
    int slot = 2 * l + s;
    if (slot < m->bw_floor) return p;
    const ast_layer_tensors *w = &m->w.layer[l], *g = &m->g.layer[l];
    const adapter_config *adc = &m->method.adapter;
    int has_ad = has_adapter_at(m, s);
    p.visited = 1;
    p.seq_before = has_ad && adc->sequential && !adc->after;
    p.need_dx = slot > m->bw_floor;
    p.need_dln = p.need_dx || (s ? g->ln2_w || g->ln2_b : g->ln1_w || g->ln1_b);
    int need_dsin = p.need_dln || p.seq_before;
    int lora_in = !s && (w->lora_a[0] || w->lora_a[1] || w->lora_a[2]);
    int sub_w = s ? g->fc1_w != NULL : g->qkv_w != NULL;  // weight gradient reads its input
    p.need_ln = (has_ad && !adc->after) || has_moa_at(m, s) ||
                (!p.seq_before && (sub_w || lora_in));
    p.need_x = p.need_dln || p.need_ln;
    if (s)  // fc2's weight gradient rebuilds GELU(fc1): keep fc1 for it too
        p.need_sub = need_dsin || g->fc1_w || g->fc1_b || g->fc2_w;
    else
        p.need_sub = need_dsin || g->qkv_w || g->qkv_b || lora_in || m->PK;
    p.need_atty = !s && (g->o_w || w->lora_a[3]);
    return p;
}

// FFN row chunk: fc1 / GELU scratch holds R rows, not the whole batch, so a
// long clip's (B T, MLP) intermediate is never materialised outside kept
// layers. Chunks of >= 1024 rows keep the GEMMs at full speed.
static int ffn_chunk(int N) {
    int chunks = (N + 1023) / 1024;
    return (N + chunks - 1) / chunks;
}

// The experts' hidden activations: Soft-MoA, hid and act (rows, D) per expert;
// Dense-MoA, every expert side by side in ex[0]'s (rows, E*D) (core/moa.c).
static void moa_experts_alloc(moa_acts *x, float *base, size_t *off, int dense, size_t E,
                              size_t rows, size_t D) {
    size_t n = ((dense ? E : 1) * rows * D + 15) / 16 * 16;
    for (size_t e = 0; e < (dense ? 1 : E); e++) {
        x->ex[e].hid = base ? base + *off : NULL, *off += n;
        x->ex[e].act = base ? base + *off : NULL, *off += n;
    }
}

// Lays out (base != NULL) or measures (base == NULL) the arena. Three parts:
// long-lived fields, the per-layer kept slabs, and one region where the
// forward scratch (including the shared layer set `tmp`) and the backward
// scratch overlay each other.
static void carve(ast_model *m, float *base) {
    const ast_config *c = &m->cfg;
    const ast_method *me = &m->method;
    size_t B = (size_t)m->Bm, T = (size_t)m->T, C = (size_t)c->C, NH = (size_t)c->NH;
    size_t MLP = (size_t)c->MLP, K = (size_t)c->K, BT = B * T, D = (size_t)m->AD;
    size_t r = (size_t)me->lora.rank, R = (size_t)m->R, PK = (size_t)m->PK, off = 0;
    ast_acts *a = &m->a;
    const adapter_config *ad = &me->adapter;
    const moa_config *mo = &me->moa;
    int conf = ad->block == BLOCK_CONFORMER;
    size_t E = (size_t)m->ME, S = (size_t)m->MS, MD = (size_t)m->MD;
    size_t mrows = mo->kind == MOA_SOFT ? B * S : BT;  // rows each expert sees
    // Each field rounded to 16 floats (64 bytes) to keep vector loads aligned.
#define ALLOC(p, n) ((p) = base ? base + off : NULL, off += ((size_t)(n) + 15) / 16 * 16)

    // long-lived
    ALLOC(a->cols, B * m->NP * m->PP);
    ALLOC(a->enc, BT * C);
    ALLOC(a->meanf, BT);
    ALLOC(a->rstdf, BT);
    ALLOC(a->pooled, B * C);
    if (c->head_ln) {
        ALLOC(a->hln, B * C);
        ALLOC(a->hmean, B);
        ALLOC(a->hrstd, B);
    }
    ALLOC(a->logits, B * K);
    ALLOC(a->probs, B * K);
    ALLOC(a->dpooled, B * C);
    ALLOC(a->dlogits, B * K);
    ALLOC(a->att, (size_t)m->nthr * attention_scratch_floats(m->T, m->Tk, c->C / c->NH));

    // forward scratch, with the shared layer set
    size_t region = off;
    ast_layer_acts *t = &a->tmp;
    memset(t, 0, sizeof *t);
    ALLOC(t->x, BT * C);
    t->x2 = t->x;  // inference and unvisited layers update the residual stream in place
    ALLOC(t->qkv, BT * 3 * C);
    ALLOC(t->atty, BT * C);
    ALLOC(t->fc1, R * MLP);
    for (int q = 0; q < 4; q++)
        if (me->lora.targets & (1u << q)) ALLOC(t->lora_z[q], BT * r);
    for (int s = 0; s < 2; s++) {
        if (has_adapter_at(m, s)) {
            if (ad->sequential && !ad->after) ALLOC(t->sin[s], BT * C);
            if (ad->after) ALLOC(t->sout[s], BT * C);
            adapter_acts *x = &t->ad[s];
            if (!conf) {
                ALLOC(x->hid, BT * D);
                ALLOC(x->act, BT * D);
            } else {
                ALLOC(x->nout, BT * C);
                ALLOC(x->nmean, BT);
                ALLOC(x->nrstd, BT);
                ALLOC(x->p, BT * 2 * D);
                ALLOC(x->g, BT * D);
                ALLOC(x->c, BT * D);
                ALLOC(x->bmean, D);
                ALLOC(x->brstd, D);
                ALLOC(x->y, BT * D);
                ALLOC(x->s, BT * D);
            }
        }
        if (has_moa_at(m, s)) {
            moa_acts *x = &t->moa[s];
            if (mo->kind == MOA_DENSE) {
                ALLOC(x->probs, BT * E);
            } else {
                ALLOC(x->dp, BT * E * S);
                ALLOC(x->cb, BT * E * S);
                ALLOC(x->xs, E * B * S * C);
                ALLOC(x->y, E * B * S * C);
            }
            moa_experts_alloc(x, base, &off, mo->kind == MOA_DENSE, E, mrows, MD);
        }
    }
    ALLOC(a->ln, BT * C);
    ALLOC(a->fsub, BT * C);
    ALLOC(a->ftmp, BT * C);
    if (mo->kind != MOA_NONE) ALLOC(a->fmoa, BT * C);
    ALLOC(a->gel, R * MLP);
    if (mo->kind == MOA_DENSE) ALLOC(a->moay, moa_dense_forward_floats(BT, (int)C, (int)MD, (int)E));
    for (int s = 0; s < 2; s++)  // the Dense-MoA experts' GEMM operands, never kept
        if (has_moa_at(m, s) && mo->kind == MOA_DENSE) t->moa[s].y = a->moay;
    size_t fwd_end = off;

    // backward scratch over the same region
    off = region;
    int any_fc2w = 0, any_after = 0, any_seq_before = 0;
    for (int l = 0; l < c->L; l++) any_fc2w |= m->g.layer[l].fc2_w != NULL;
    any_after = (ad->at_mhsa || ad->at_ffn) && ad->after;
    any_seq_before = (ad->at_mhsa || ad->at_ffn) && ad->sequential && !ad->after;
    ALLOC(a->dres, BT * C);
    ALLOC(a->dln, BT * C);
    ALLOC(a->lnb, BT * C);
    ALLOC(a->datty, BT * C);
    ALLOC(a->dqkv, BT * 3 * C);
    if (any_after) ALLOC(a->dsub, BT * C);
    if (any_seq_before) ALLOC(a->dsin, BT * C);
    if (PK) {
        ALLOC(a->dpk, B * PK * C);
        ALLOC(a->dpv, B * PK * C);
    }
    ALLOC(a->dfc, R * MLP);
    if (any_fc2w) ALLOC(a->gelb, R * MLP);
    if (r) ALLOC(a->dz, BT * r);
    if (ad->at_mhsa || ad->at_ffn)
        ALLOC(a->dad, adapter_scratch_floats(conf, (int)BT, (int)C, (int)D));
    if (mo->kind != MOA_NONE)
        ALLOC(a->dmoa, moa_scratch_floats(mo->kind == MOA_SOFT, (int)B, (int)T, (int)C, (int)MD,
                                          (int)E, (int)S));
    off = off > fwd_end ? off : fwd_end;

    // per-layer slabs: only what each layer's backward reads; the rest is tmp
    size_t kept0 = off;
    for (int l = 0; l < c->L; l++) {
        ast_layer_acts *la = &a->layer[l];
        *la = *t;
        site_plan p0 = plan_site(m, l, 0), p1 = plan_site(m, l, 1);
        la->mean1 = la->rstd1 = la->mean2 = la->rstd2 = la->lse = NULL;
        if (p0.need_x) {
            ALLOC(la->x, BT * C);
            ALLOC(la->mean1, BT);
            ALLOC(la->rstd1, BT);
        }
        if (p0.need_sub) {
            ALLOC(la->qkv, BT * 3 * C);
            ALLOC(la->lse, B * NH * T);
        }
        if (p0.need_atty) ALLOC(la->atty, BT * C);
        if (p0.visited)
            for (int q = 0; q < 4; q++)
                if (me->lora.targets & (1u << q)) ALLOC(la->lora_z[q], BT * r);
        if (p1.need_x) {
            ALLOC(la->x2, BT * C);
            ALLOC(la->mean2, BT);
            ALLOC(la->rstd2, BT);
        }
        if (p1.need_sub) ALLOC(la->fc1, BT * MLP);
        for (int s = 0; s < 2; s++) {
            if (!(s ? p1.visited : p0.visited)) continue;
            if (has_adapter_at(m, s)) {
                if (ad->sequential && !ad->after) ALLOC(la->sin[s], BT * C);
                if (ad->after) ALLOC(la->sout[s], BT * C);
                adapter_acts *x = &la->ad[s];
                if (!conf) {
                    ALLOC(x->hid, BT * D);
                    ALLOC(x->act, BT * D);
                } else {  // the Conformer LayerNorm output (nout) is rebuilt in backward
                    ALLOC(x->nmean, BT);
                    ALLOC(x->nrstd, BT);
                    ALLOC(x->p, BT * 2 * D);
                    ALLOC(x->g, BT * D);
                    ALLOC(x->c, BT * D);
                    ALLOC(x->bmean, D);
                    ALLOC(x->brstd, D);
                    ALLOC(x->y, BT * D);
                    ALLOC(x->s, BT * D);
                }
            }
            if (has_moa_at(m, s)) {
                moa_acts *x = &la->moa[s];
                if (mo->kind == MOA_DENSE) {
                    ALLOC(x->probs, BT * E);  // expert outputs y are rebuilt in backward
                } else {
                    ALLOC(x->dp, BT * E * S);
                    ALLOC(x->cb, BT * E * S);
                    ALLOC(x->xs, E * B * S * C);
                    ALLOC(x->y, E * B * S * C);
                }
                moa_experts_alloc(x, base, &off, mo->kind == MOA_DENSE, E, mrows, MD);
            }
        }
    }
#undef ALLOC
    m->kept_floats = off - kept0;
    m->arena_floats = off;
}

static int model_init(ast_model *m, const ast_config *cfg, const ast_method *method,
                      int max_batch, int layerwise, petal_err *err);

int ast_model_init(ast_model *m, const ast_config *cfg, const ast_method *method, int max_batch,
                   petal_err *err) {
    return model_init(m, cfg, method, max_batch, 0, err);
}

int ast_model_init_layerwise(ast_model *m, const ast_config *cfg, const ast_method *method,
                             int max_batch, petal_err *err) {
    return model_init(m, cfg, method, max_batch, 1, err);
}

static int model_init(ast_model *m, const ast_config *cfg, const ast_method *method,
                      int max_batch, int layerwise, petal_err *err) {
    memset(m, 0, sizeof *m);
    m->params.layer_grads = layerwise;
    int st = ast_config_check(cfg, err);
    if (st) return st;
    if (max_batch <= 0) return petal_fail(err, PETAL_EINPUT, "batch size must be positive");
    m->cfg = *cfg;
    m->method = *method;
    st = ast_method_resolve(&m->method, cfg->C, cfg->L, err);
    if (st) return st;
    const ast_method *me = &m->method;
    int prompt_pool = cfg->pool >= POOL_PROMPTS;
    if (prompt_pool && !me->prompt.tokens)
        return petal_fail(err, PETAL_EINPUT, "pooling '%s' needs prompt tokens",
                          ast_pool_name(cfg->pool));
    if (cfg->pool == POOL_CLS_DIST && me->prompt.tokens)
        return petal_fail(err, PETAL_EINPUT,
                          "pooling cls_dist needs the distillation token, which prompts replace");
    m->Bm = max_batch;
    m->NP = ast_fdim(cfg) * ast_tdim(cfg);
    m->NPR = me->prompt.tokens;
    m->T = 1 + (m->NPR ? m->NPR : 1) + m->NP;
    m->PK = me->prefix.tokens / 2;
    m->Tk = m->T + m->PK;
    m->PP = cfg->patch * cfg->patch;
    m->AD = me->adapter.dim;
    if (me->moa.kind != MOA_NONE) {
        m->ME = me->moa.experts;
        m->MS = me->moa.kind == MOA_SOFT ? me->moa.slots : 1;
        m->MD = me->moa.dim;
    }
    m->lora_s = me->lora.targets ? ast_method_lora_scaling(me) : 0.0f;
    m->training = 1;
    m->R = ffn_chunk(max_batch * m->T);
    m->nthr = omp_get_max_threads();
    m->w.layer = petal_calloc((size_t)(cfg->L ? cfg->L : 1), sizeof(ast_layer_tensors));
    m->g.layer = petal_calloc((size_t)(cfg->L ? cfg->L : 1), sizeof(ast_layer_tensors));
    m->a.layer = petal_calloc((size_t)(cfg->L ? cfg->L : 1), sizeof(ast_layer_acts));
    build_table(m);
    int lo = param_lowest_trainable_slot(&m->params);
    m->bw_floor = lo == INT_MAX ? 2 * cfg->L : lo;
    carve(m, NULL);  // measure
    // Anonymous pages are committed on first touch: a model that only runs
    // inference never makes its kept slabs resident.
    size_t bytes = m->arena_floats * sizeof(float);
    void *p = mmap(NULL, bytes ? bytes : 64, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
        double mib = bytes / 1048576.0;
        ast_model_free(m);
        return petal_fail(err, PETAL_EFAIL,
                          "cannot allocate %.0f MiB of activations (batch %d, %d tokens)", mib,
                          max_batch, ast_tokens(cfg));
    }
#ifdef MADV_HUGEPAGE
    // 2 MiB pages where the kernel allows them: fewer TLB misses when GEMMs and
    // element-wise passes stream over slabs of several MiB (advice only).
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    m->arena = p;
    carve(m, m->arena);  // point the fields into the arena
    return PETAL_OK;
}

void ast_model_free(ast_model *m) {
    for (int l = 0; m->w.layer && l < m->cfg.L; l++)
        for (int s = 0; s < 2; s++) {
            free(m->w.layer[l].moa[s].experts);
            free(m->g.layer[l].moa[s].experts);
        }
    ast_model_free_bf16(m);
    param_table_free(&m->params);
    free(m->w.layer);
    free(m->g.layer);
    free(m->a.layer);
    if (m->arena) munmap(m->arena, m->arena_floats ? m->arena_floats * sizeof(float) : 64);
    memset(m, 0, sizeof *m);
}

void ast_init_weights(ast_model *m, uint64_t seed, int skip_backbone) {
    param_init(&m->params, seed, skip_backbone);
}

// ---- forward -------------------------------------------------------------------------

static void add_into(float *y, const float *a, size_t n) {
    double t0 = prof_start();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += a[i];
    prof_stop(PROF_ELEMWISE, t0);
}

// y = (((x + p[0]) + p[1]) + ...) in one pass over np <= 4 parts, the order
// of adding them one by one (y may alias x).
static void residual_sum(float *y, const float *x, const float *const *p, int np, size_t n) {
    if (!np) {
        if (y != x) memcpy(y, x, n * sizeof *y);
        return;
    }
    double t0 = prof_start();
    const float *p0 = p[0], *p1 = np > 1 ? p[1] : NULL, *p2 = np > 2 ? p[2] : NULL;
    const float *p3 = np > 3 ? p[3] : NULL;
    PETAL_ASSERT(np <= 4);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = x[i] + p0[i];
        if (p1) v += p1[i];
        if (p2) v += p2[i];
        if (p3) v += p3[i];
        y[i] = v;
    }
    prof_stop(PROF_ELEMWISE, t0);
}

// A projection's forward and input gradient on its bf16 copy when the model
// holds one (frozen weight, model.dtype bf16), else on the float32 weight.
static void proj_forward(float *out, const float *inp, const float *w, const uint16_t *w16,
                         const float *b, int N, int IC, int OC) {
    if (w16) linear_forward_bf16(out, inp, w16, b, N, IC, OC);
    else linear_forward(out, inp, w, b, N, IC, OC);
}

static void proj_input_backward(float *dinp, const float *dout, const float *w, const uint16_t *w16,
                                int N, int IC, int OC, float beta) {
    if (w16) linear_input_backward_bf16(dinp, dout, w16, N, IC, OC, beta);
    else linear_input_backward(dinp, dout, w, N, IC, OC, beta);
}

// The MHSA sublayer: out (N, C) = O(attention(qkv(u))), with LoRA and prefix hooks.
static void mhsa_forward(ast_model *m, ast_layer_acts *la, int l, float *out, const float *u,
                         int B) {
    const ast_config *c = &m->cfg;
    const ast_layer_tensors *w = &m->w.layer[l];
    int T = m->T, C = c->C, N = B * T, r = m->method.lora.rank;
    float *qkv = la->qkv;
    proj_forward(qkv, u, w->qkv_w, w->qkv_w16, w->qkv_b, N, C, 3 * C);
    for (int t = 0; t < 3; t++)
        if (w->lora_a[t])
            lora_forward(qkv + t * C, la->lora_z[t], u, w->lora_a[t], w->lora_b[t], m->lora_s, N,
                         C, r, C, 3 * C);
    attention_forward(la->atty, la->lse, m->a.att, m->nthr, qkv, qkv + C, qkv + 2 * C,
                      w->prefix_k, w->prefix_v, 3 * C, 3 * C, m->PK, B, T, C, c->NH);
    proj_forward(out, la->atty, w->o_w, w->o_w16, w->o_b, N, C, C);
    if (w->lora_a[3])
        lora_forward(out, la->lora_z[3], la->atty, w->lora_a[3], w->lora_b[3], m->lora_s, N, C,
                     r, C, C);
}

// The FFN sublayer: out (N, C) = fc2(gelu(fc1(u))), R rows at a time. fc1 is
// written into the layer's kept slab, or into R rows of scratch.
static void ffn_forward(ast_model *m, ast_layer_acts *la, int l, float *out, const float *u,
                        int B) {
    const ast_layer_tensors *w = &m->w.layer[l];
    int C = m->cfg.C, MLP = m->cfg.MLP, N = B * m->T, R = m->R;
    int kept = la->fc1 != m->a.tmp.fc1;
    for (int r0 = 0; r0 < N; r0 += R) {
        int rows = N - r0 < R ? N - r0 : R;
        float *f = kept ? la->fc1 + (size_t)r0 * MLP : la->fc1;
        proj_forward(f, u + (size_t)r0 * C, w->fc1_w, w->fc1_w16, NULL, rows, C, MLP);
        bias_gelu_forward(m->a.gel, f, w->fc1_b, rows, MLP);
        proj_forward(out + (size_t)r0 * C, m->a.gel, w->fc2_w, w->fc2_w16, w->fc2_b, rows, MLP, C);
    }
}

// One site (s = 0 MHSA, 1 FFN) of layer l: y = x + sublayer part, with the
// adapter placements of docs/METHODS.md. y may alias x (the residual stream
// updated in place when x is not kept).
static void site_forward(ast_model *m, ast_layer_acts *la, int l, int s, float *y, const float *x,
                         int B) {
    const ast_config *c = &m->cfg;
    const ast_layer_tensors *w = &m->w.layer[l];
    const adapter_config *adc = &m->method.adapter;
    ast_acts *a = &m->a;
    int C = c->C, N = B * m->T, D = m->AD, conf = adc->block == BLOCK_CONFORMER;
    size_t NC = (size_t)N * C;
    float *ln = a->ln;
    layernorm_forward(ln, s ? la->mean2 : la->mean1, s ? la->rstd2 : la->rstd1, x,
                      s ? w->ln2_w : w->ln1_w, s ? w->ln2_b : w->ln1_b, c->ln_eps, N, C);
    int has_ad = has_adapter_at(m, s);
    adapter_acts *av = &la->ad[s];
    const float *sin = ln;
    if (has_ad && adc->sequential && !adc->after) {  // the adapter feeds the sublayer
        float *u = la->sin[s];
        adapter_forward(u, av, ln, &w->ad[s], conf, m->training, B, m->T, C, D, adc->kernel);
        if (adc->residual) add_into(u, ln, NC);
        sin = u;
    }
    int seq_add = has_ad && adc->seq_add;  // part = S(a) + a
    float *sout = has_ad && adc->after ? la->sout[s] : a->fsub;
    if (s) ffn_forward(m, la, l, sout, sin, B);
    else mhsa_forward(m, la, l, sout, sin, B);
    // The parts added to the residual stream, summed in one pass at the end.
    const float *parts[4];
    int np = 0;
    if (!has_ad || !adc->sequential || !adc->after) parts[np++] = sout;
    if (seq_add) parts[np++] = sin;
    if (has_ad && !(adc->sequential && !adc->after)) {
        const float *ain = adc->after ? sout : ln;
        adapter_forward(a->ftmp, av, ain, &w->ad[s], conf, m->training, B, m->T, C, D,
                        adc->kernel);
        parts[np++] = a->ftmp;
        if (adc->residual) parts[np++] = ain;
    }
    if (has_moa_at(m, s)) {  // parallel, reading the LayerNorm output
        moa_forward(a->fmoa, &la->moa[s], ln, &w->moa[s], m->method.moa.kind == MOA_SOFT, B, m->T,
                    C, m->MD, m->ME, m->MS);
        parts[np++] = a->fmoa;
    }
    residual_sum(y, x, parts, np, NC);
}

static void pool_range(const ast_model *m, int *t0, int *t1) {
    int T = m->T, P = m->NPR;
    switch (m->cfg.pool) {
    case POOL_CLS: *t0 = 0, *t1 = 1; break;
    case POOL_CLS_DIST: *t0 = 0, *t1 = 2; break;
    case POOL_PROMPTS: *t0 = 1, *t1 = 1 + P; break;
    case POOL_SPEECH: *t0 = 1 + P, *t1 = T; break;
    case POOL_PROMPTS_SPEECH: *t0 = 1, *t1 = T; break;
    default: *t0 = 0, *t1 = T; break;
    }
}

// The encoder: patches, tokens, every layer; returns its output (B, T, C).
// keep: write the activations ast_backward reads into the kept slabs;
// otherwise every layer runs in the shared scratch set.
static const float *encoder_forward(ast_model *m, const float *fbank, int B, int keep) {
    const ast_config *c = &m->cfg;
    PETAL_ASSERT(B > 0 && B <= m->Bm);
    int T = m->T, C = c->C, P = m->NPR, L = c->L;
    ast_acts *a = &m->a;
    ast_layer_acts *la0 = keep && L ? &a->layer[0] : &a->tmp;
    float *enc = keep ? a->enc : a->tmp.x;
    patch_im2col(a->cols, fbank, B, c->frames, c->F, c->patch, c->fstride, c->tstride);
    embed_forward(L ? la0->x : enc, a->cols, m->w.patch_w, m->w.patch_b, m->w.cls, m->w.dist,
                  m->w.prompt, m->w.pos, B, m->NP, P, m->PP, C);
    for (int l = 0; l < L; l++) {
        ast_layer_acts *la = keep ? &a->layer[l] : &a->tmp;
        float *x = la->x;
        if (m->w.deep && l >= 1)  // deep prompts replace tokens 1..P entering layer l
            for (int b = 0; b < B; b++)
                memcpy(x + ((size_t)b * T + 1) * C, m->w.deep + (size_t)(l - 1) * P * C,
                       (size_t)P * C * sizeof *x);
        site_forward(m, la, l, 0, la->x2, x, B);
        float *next = l + 1 < L ? (keep ? a->layer[l + 1].x : a->tmp.x) : enc;
        site_forward(m, la, l, 1, next, la->x2, B);
    }
    return enc;
}

// Final LayerNorm, pooling, head and loss on the encoder output enc (B, T, C).
static double head_forward(ast_model *m, const float *enc, const int *labels, int B,
                           int *correct) {
    const ast_config *c = &m->cfg;
    int T = m->T, C = c->C, N = B * T;
    ast_acts *a = &m->a;
    layernorm_forward(a->ln, a->meanf, a->rstdf, enc, m->w.lnf_w, m->w.lnf_b, c->ln_eps, N, C);
    int t0, t1;
    pool_range(m, &t0, &t1);
    pool_forward(a->pooled, a->ln, t0, t1, B, T, C);
    const float *hin = a->pooled;
    if (c->head_ln) {
        layernorm_forward(a->hln, a->hmean, a->hrstd, a->pooled, m->w.hln_w, m->w.hln_b,
                          c->ln_eps, B, C);
        hin = a->hln;
    }
    linear_forward(a->logits, hin, m->w.head_w, m->w.head_b, B, C, c->K);
    if (!labels) return 0.0;
    double t = prof_start();
    double loss = crossentropy_forward(a->probs, correct, a->logits, labels, B, c->K);
    prof_stop(PROF_LOSS, t);
    return loss;
}

static double forward(ast_model *m, const float *fbank, const int *labels, int B, int *correct,
                      int keep) {
    const float *enc = encoder_forward(m, fbank, B, keep);
    m->kept = keep;
    return head_forward(m, enc, labels, B, correct);
}

void ast_encode(ast_model *m, float *enc, const float *fbank, int B) {
    const float *e = encoder_forward(m, fbank, B, 0);
    m->kept = 0;
    memcpy(enc, e, (size_t)B * m->T * m->cfg.C * sizeof *enc);
}

double ast_forward_encoded(ast_model *m, const float *enc, const int *labels, int B,
                           int *correct) {
    // Only the final LayerNorm and the head may train: the backward reads the
    // encoder output from a->enc and stops there.
    PETAL_ASSERT(B > 0 && B <= m->Bm && m->bw_floor >= 2 * m->cfg.L);
    memcpy(m->a.enc, enc, (size_t)B * m->T * m->cfg.C * sizeof *enc);
    m->kept = 1;
    return head_forward(m, m->a.enc, labels, B, correct);
}

double ast_forward(ast_model *m, const float *fbank, const int *labels, int B, int *correct) {
    return forward(m, fbank, labels, B, correct, m->training != 0);
}

double ast_infer(ast_model *m, const float *fbank, const int *labels, int B, int *correct) {
    return forward(m, fbank, labels, B, correct, 0);
}

// ---- backward ------------------------------------------------------------------------

// MHSA sublayer backward: dsub (N, C) is the gradient of its output; writes
// the input gradient into dsin (N, C) with factor beta on what is there
// (NULL: not needed); parameter gradients +=.
static void mhsa_backward(ast_model *m, const ast_layer_acts *la, int l, float *dsin, float beta,
                          const float *dsub, const float *u, int B) {
    const ast_config *c = &m->cfg;
    const ast_layer_tensors *w = &m->w.layer[l], *g = &m->g.layer[l];
    int T = m->T, C = c->C, N = B * T, r = m->method.lora.rank, PK = m->PK;
    ast_acts *a = &m->a;
    const float *qkv = la->qkv;
    int lora_qkv = w->lora_a[0] || w->lora_a[1] || w->lora_a[2];
    int need_att = dsin || g->qkv_w || g->qkv_b || lora_qkv || PK;
    if (need_att) proj_input_backward(a->datty, dsub, w->o_w, w->o_w16, N, C, C, 0.0f);
    linear_backward(NULL, g->o_w, g->o_b, dsub, la->atty, NULL, N, C, C);
    if (w->lora_a[3])
        lora_backward(need_att ? a->datty : NULL, g->lora_a[3], g->lora_b[3], a->dz, dsub, C,
                      la->atty, la->lora_z[3], w->lora_a[3], w->lora_b[3], m->lora_s, N, C, r, C);
    if (!need_att) return;
    attention_backward(a->dqkv, a->dqkv + C, a->dqkv + 2 * C, a->dpk, a->dpv, a->att, m->nthr,
                       a->datty, qkv, qkv + C, qkv + 2 * C, w->prefix_k, w->prefix_v, la->lse,
                       3 * C, 3 * C, PK, B, T, C, c->NH);
    if (PK) {  // every example's prefix gradient, summed over b in order per element
        size_t n = (size_t)PK * C;
#pragma omp parallel for schedule(static) if (n * B > 65536)
        for (size_t i = 0; i < n; i++)
            for (int b = 0; b < B; b++)
                g->prefix_k[i] += a->dpk[b * n + i], g->prefix_v[i] += a->dpv[b * n + i];
    }
    if (dsin) proj_input_backward(dsin, a->dqkv, w->qkv_w, w->qkv_w16, N, C, 3 * C, beta);
    linear_backward(NULL, g->qkv_w, g->qkv_b, a->dqkv, u, NULL, N, C, 3 * C);
    for (int t = 0; t < 3; t++)
        if (w->lora_a[t])
            lora_backward(dsin, g->lora_a[t], g->lora_b[t], a->dz, a->dqkv + t * C, 3 * C, u,
                          la->lora_z[t], w->lora_a[t], w->lora_b[t], m->lora_s, N, C, r, C);
}

// FFN sublayer backward, R rows at a time (dsin, beta as mhsa_backward).
// GELU's output is rebuilt from fc1 only when fc2's weight trains.
static void ffn_backward(ast_model *m, const ast_layer_acts *la, int l, float *dsin, float beta,
                         const float *dsub, const float *u, int B) {
    const ast_layer_tensors *w = &m->w.layer[l], *g = &m->g.layer[l];
    int C = m->cfg.C, MLP = m->cfg.MLP, N = B * m->T, R = m->R;
    ast_acts *a = &m->a;
    if (g->fc2_b) bias_backward(g->fc2_b, dsub, N, C);
    if (!(dsin || g->fc1_w || g->fc1_b || g->fc2_w)) return;
    for (int r0 = 0; r0 < N; r0 += R) {
        int rows = N - r0 < R ? N - r0 : R;
        const float *f = la->fc1 + (size_t)r0 * MLP, *ds = dsub + (size_t)r0 * C;
        proj_input_backward(a->dfc, ds, w->fc2_w, w->fc2_w16, rows, MLP, C, 0.0f);
        if (g->fc2_w) {
            gelu_backward_recompute(a->dfc, a->gelb, a->dfc, f, (size_t)rows * MLP);
            linear_backward(NULL, g->fc2_w, NULL, ds, a->gelb, NULL, rows, MLP, C);
        } else {
            gelu_backward(a->dfc, a->dfc, f, (size_t)rows * MLP);
        }
        if (dsin)
            proj_input_backward(dsin + (size_t)r0 * C, a->dfc, w->fc1_w, w->fc1_w16, rows, C, MLP,
                                beta);
        linear_backward(NULL, g->fc1_w, g->fc1_b, a->dfc, u ? u + (size_t)r0 * C : NULL, NULL, rows,
                        C, MLP);
    }
}

// One site backward. a->dres holds the gradient of the site's output y; on
// return it holds the gradient of its input x when the plan needs dx (else
// it is left partial). Mirrors site_forward's placements.
static void site_backward(ast_model *m, int l, int s, int B) {
    const ast_layer_tensors *w = &m->w.layer[l], *g = &m->g.layer[l];
    const adapter_config *adc = &m->method.adapter;
    ast_acts *a = &m->a;
    const ast_layer_acts *la = &a->layer[l];
    site_plan p = plan_site(m, l, s);
    int C = m->cfg.C, N = B * m->T, D = m->AD, conf = adc->block == BLOCK_CONFORMER;
    size_t NC = (size_t)N * C;
    const float *x = s ? la->x2 : la->x;
    const float *mean = s ? la->mean2 : la->mean1, *rstd = s ? la->rstd2 : la->rstd1;
    const float *lnw = s ? w->ln2_w : w->ln1_w, *lnbias = s ? w->ln2_b : w->ln1_b;
    float *glnw = s ? g->ln2_w : g->ln1_w, *glnb = s ? g->ln2_b : g->ln1_b;
    int has_ad = has_adapter_at(m, s);
    const adapter_acts *av = &la->ad[s];
    const adapter_tensors *aw = &w->ad[s], *ag = &g->ad[s];
    const float *ln = NULL;  // the LayerNorm output, rebuilt from x and its statistics
    if (p.need_ln) {
        layernorm_apply(a->lnb, x, mean, rstd, lnw, lnbias, N, C);
        ln = a->lnb;
    }
    float *dy = a->dres, *dln = p.need_dln ? a->dln : NULL;
    if (dln) memset(dln, 0, NC * sizeof *dln);
    if (has_moa_at(m, s))
        moa_backward(dln, &g->moa[s], a->dmoa, dy, ln, &la->moa[s], &w->moa[s],
                     m->method.moa.kind == MOA_SOFT, B, m->T, C, m->MD, m->ME, m->MS);
    // gradient of the sublayer output
    const float *dsub = dy;
    if (has_ad && !p.seq_before) {
        if (adc->after) {
            float *ds = a->dsub;
            if (adc->sequential) memset(ds, 0, NC * sizeof *ds);
            else memcpy(ds, dy, NC * sizeof *ds);
            adapter_backward(ds, ag, a->dad, dy, la->sout[s], av, aw, conf, B, m->T, C, D,
                             adc->kernel);
            if (adc->residual) add_into(ds, dy, NC);
            dsub = ds;
        } else {  // parallel before: the adapter reads ln
            adapter_backward(dln, ag, a->dad, dy, ln, av, aw, conf, B, m->T, C, D, adc->kernel);
            if (adc->residual && dln) add_into(dln, dy, NC);
        }
    }
    // The sublayer's input gradient accumulates straight into dln, except
    // when a sequential-before adapter sits between them.
    const float *sin = p.seq_before ? la->sin[s] : ln;
    float *dsin = p.seq_before ? a->dsin : dln;
    float beta = p.seq_before ? 0.0f : 1.0f;
    if (s) ffn_backward(m, la, l, dsin, beta, dsub, sin, B);
    else mhsa_backward(m, la, l, dsin, beta, dsub, sin, B);
    if (p.seq_before) {
        if (adc->seq_add) add_into(a->dsin, dy, NC);  // a also reaches the output directly
        adapter_backward(dln, ag, a->dad, dsin, ln, av, aw, conf, B, m->T, C, D, adc->kernel);
        if (adc->residual && dln) add_into(dln, dsin, NC);
    }
    if (dln)
        layernorm_backward(p.need_dx ? a->dres : NULL, glnw, glnb, dln, x, lnw, mean, rstd, N, C);
}

// Layer l's gradients are final: hand them to the optimizer; with layer-shared
// gradient memory the block must be zero for the next layer down.
static void layer_done(ast_model *m, int l) {
    param_table *t = &m->params;
    PETAL_ASSERT(m->on_layer || !t->layer_grads);  // nothing else could read these gradients
    int cleared = m->on_layer && m->on_layer(m->on_layer_ctx, l);
    if (t->layer_grads && !cleared)
        memset(t->grad + t->glayer, 0, (t->ngrad - t->glayer) * sizeof(float));
}

void ast_backward(ast_model *m, const int *labels, int B) {
    const ast_config *c = &m->cfg;
    PETAL_ASSERT(m->kept);  // the last forward kept what the backward reads
    int T = m->T, C = c->C, N = B * T, P = m->NPR;
    ast_acts *a = &m->a;
    const ast_tensors *g = &m->g;
    if (m->params.ngrad) memset(m->params.grad, 0, m->params.ngrad * sizeof(float));

    double tl = prof_start();
    crossentropy_backward(a->dlogits, a->probs, labels, B, c->K);
    prof_stop(PROF_LOSS, tl);
    if (c->head_ln) {
        float *dh = a->datty;  // (B, C) scratch: gradient of the head LayerNorm output
        linear_backward(dh, g->head_w, g->head_b, a->dlogits, a->hln, m->w.head_w, B, C, c->K);
        memset(a->dpooled, 0, (size_t)B * C * sizeof(float));
        layernorm_backward(a->dpooled, g->hln_w, g->hln_b, dh, a->pooled, m->w.hln_w, a->hmean,
                           a->hrstd, B, C);
    } else {
        linear_backward(a->dpooled, g->head_w, g->head_b, a->dlogits, a->pooled, m->w.head_w, B, C,
                        c->K);
    }
    int t0, t1;
    pool_range(m, &t0, &t1);
    pool_backward(a->dln, a->dpooled, t0, t1, B, T, C);
    int below = m->bw_floor < 2 * c->L;  // does anything under the final LayerNorm train?
    if (below) memset(a->dres, 0, (size_t)N * C * sizeof(float));
    layernorm_backward(below ? a->dres : NULL, g->lnf_w, g->lnf_b, a->dln, a->enc, m->w.lnf_w,
                       a->meanf, a->rstdf, N, C);

    // a->dres holds the gradient of the residual stream leaving layer l. Slot
    // 2l+s is processed while it is >= the floor; it passes a gradient down
    // only when a lower slot trains.
    for (int l = c->L - 1; l >= 0 && 2 * l + 1 >= m->bw_floor; l--) {
        if (l < c->L - 1) layer_done(m, l + 1);
        for (int s = 1; s >= 0 && 2 * l + s >= m->bw_floor; s--) site_backward(m, l, s, B);
        if (g->deep && l >= 1 && 2 * l - 1 >= m->bw_floor) {
            // deep prompt l-1 replaced tokens 1..P entering layer l: its gradient
            // is theirs, and nothing flows to the replaced outputs of layer l-1.
            float *gd = g->deep + (size_t)(l - 1) * P * C;
            size_t n = (size_t)P * C;
#pragma omp parallel for schedule(static) if (n * B > 65536)
            for (size_t i = 0; i < n; i++)  // summed over b in order per element
                for (int b = 0; b < B; b++) {
                    float *d = a->dres + ((size_t)b * T + 1) * C;
                    gd[i] += d[i];
                    d[i] = 0.0f;
                }
        }
    }
    if (m->bw_floor <= 2 * c->L - 1) layer_done(m, m->bw_floor < 0 ? 0 : m->bw_floor / 2);
    if (m->bw_floor < 0)
        embed_backward(g->patch_w, g->patch_b, g->cls, g->dist, g->prompt, g->pos, a->dres, a->cols,
                       B, m->NP, P, m->PP, C);
}
