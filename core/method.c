// ==== Method configuration: presets, key=value settings, validation ============
#include "core/method.h"

#include <math.h>
#include <string.h>

int ast_method_parse(ast_method *m, const char *name, petal_err *err) {
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->base = METHOD_LINEAR;  // hook methods train head + final LN besides their own rows
    m->lora.alpha = 8.0f;
    m->adapter.kernel = 31;
    if (!strcmp(name, "full")) m->base = METHOD_FULL;
    else if (!strcmp(name, "linear")) m->base = METHOD_LINEAR;
    else if (!strcmp(name, "bitfit")) m->base = METHOD_BITFIT;
    else if (!strcmp(name, "bitfit_petal")) m->base = METHOD_BITFIT_PETAL;
    else if (!strcmp(name, "lora")) m->lora.targets = LORA_Q | LORA_V, m->lora.rr = 64;
    else if (!strcmp(name, "adapter_pfeiffer")) m->adapter.at_ffn = 1, m->adapter.rr = 64;
    else if (!strcmp(name, "adapter_houlsby"))
        m->adapter.at_ffn = m->adapter.at_mhsa = 1, m->adapter.rr = 64;
    else if (!strcmp(name, "conformer"))
        m->adapter.at_ffn = 1, m->adapter.rr = 64, m->adapter.block = BLOCK_CONFORMER;
    else if (!strcmp(name, "prompt_shallow")) m->prompt.tokens = 24;
    else if (!strcmp(name, "prompt_deep")) m->prompt.tokens = 24, m->prompt.deep = 1;
    else if (!strcmp(name, "prefix")) m->prefix.tokens = 24;
    else if (!strcmp(name, "dense_moa"))
        m->moa = (moa_config){.kind = MOA_DENSE, .at_ffn = 1, .experts = 4, .rr = 64};
    else if (!strcmp(name, "soft_moa"))
        m->moa = (moa_config){.kind = MOA_SOFT, .at_ffn = 1, .experts = 4, .slots = 1, .rr = 64};
    // The paper's Table 1 (arXiv 2312.03694 v4) as the reference code runs it:
    // sizes by reduction rate (LoRA rr 128 -> r 6, scaling alpha / rr; bottleneck
    // rr 64 -> D 12; Conformer rr 96 -> D 8), the reference's inits, and its
    // Conformer LayerNorm that is computed and discarded.
    else if (!strcmp(name, "lora_paper")) m->lora.targets = LORA_Q | LORA_V, m->lora.rr = 128;
    else if (!strcmp(name, "adapter_pfeiffer_paper"))
        m->adapter.at_ffn = 1, m->adapter.rr = 64, m->adapter.init_reference = 1;
    else if (!strcmp(name, "adapter_houlsby_paper"))
        m->adapter.at_ffn = m->adapter.at_mhsa = 1, m->adapter.rr = 64,
        m->adapter.init_reference = 1;
    else if (!strcmp(name, "conformer_paper_speech") || !strcmp(name, "conformer_paper_audio"))
        m->adapter.at_ffn = 1, m->adapter.rr = 96, m->adapter.block = BLOCK_CONFORMER,
        m->adapter.init_reference = 1, m->adapter.norm_discarded = 1,
        m->adapter.kernel = strstr(name, "audio") ? 8 : 31;
    else if (!strcmp(name, "prompt_shallow_paper")) m->prompt.tokens = 300;
    else if (!strcmp(name, "prompt_deep_paper")) m->prompt.tokens = 25, m->prompt.deep = 1;
    else if (!strcmp(name, "prefix_paper")) m->prefix.tokens = 24;
    else
        return petal_fail(err, PETAL_EINPUT, "unknown method '%s' (petal train --keys lists them)",
                          name);
    return PETAL_OK;
}

// The method settings of the table (core/settings.c), applied to m. Values
// arrive converted and range-checked; what is left is each key's meaning.
int ast_method_apply(ast_method *m, const setting_def *d, const setting_value *v,
                     petal_err *err) {
    lora_config *lo = &m->lora;
    adapter_config *ad = &m->adapter;
    moa_config *mo = &m->moa;
    int i = (int)v->i;
    switch (d->id) {
    case SK_BASE: m->base = (ast_base)i; break;  // full|linear|bitfit in enum order
    case SK_LORA_TARGETS: {
        unsigned t = 0;
        for (const char *c = v->text; *c; c++) {
            const char *at = strchr("qkvo", *c);
            if (!at)
                return petal_fail(err, PETAL_EINPUT,
                                  "lora.targets expects letters of q, k, v, o (e.g. qv), got '%s'",
                                  v->text);
            t |= 1u << (at - "qkvo");
        }
        lo->targets = t;
        if (!lo->rank && lo->rr == 0) lo->rr = 64;
        break;
    }
    case SK_LORA_RANK: lo->rr = 0, lo->rank = i; break;
    case SK_LORA_RR: lo->rank = 0, lo->rr = (float)v->x; break;
    case SK_LORA_ALPHA: lo->alpha = (float)v->x; break;
    case SK_LORA_INIT: lo->init_paper = i; break;
    case SK_ADAPTER_TYPE:  // pfeiffer: the FFN site; houlsby: both
        ad->at_ffn = 1, ad->at_mhsa = i;
        if (!ad->dim && ad->rr == 0) ad->rr = 64;
        break;
    case SK_ADAPTER_LOCATION:  // mhsa|ffn|both
        ad->at_mhsa = i != 1, ad->at_ffn = i != 0;
        if (!ad->dim && ad->rr == 0) ad->rr = 64;
        break;
    case SK_ADAPTER_BLOCK: ad->block = (adapter_block)i; break;
    case SK_ADAPTER_CONF: ad->sequential = i; break;
    case SK_ADAPTER_POSITION: ad->after = i; break;
    case SK_ADAPTER_RESIDUAL: ad->residual = i; break;
    case SK_ADAPTER_SEQ_ADD: ad->seq_add = i; break;
    case SK_ADAPTER_NORM: ad->norm_discarded = i; break;
    case SK_ADAPTER_DIM: ad->rr = 0, ad->dim = i; break;
    case SK_ADAPTER_RR: ad->dim = 0, ad->rr = (float)v->x; break;
    case SK_ADAPTER_KERNEL: ad->kernel = i; break;
    case SK_ADAPTER_INIT: ad->init_reference = i; break;
    case SK_PROMPT_TOKENS: m->prompt.tokens = i; break;
    case SK_PROMPT_DEEP: m->prompt.deep = i; break;
    case SK_PREFIX_TOKENS: m->prefix.tokens = i; break;
    case SK_MOA_KIND:
        mo->kind = i ? MOA_SOFT : MOA_DENSE;
        if (!mo->at_ffn && !mo->at_mhsa) mo->at_ffn = 1;
        if (!mo->experts) mo->experts = 4;
        if (mo->kind == MOA_SOFT && !mo->slots) mo->slots = 1;
        if (!mo->dim && mo->rr == 0) mo->rr = 64;
        break;
    case SK_MOA_INIT: mo->init_reference = i; break;
    case SK_MOA_LOCATION: mo->at_mhsa = i != 1, mo->at_ffn = i != 0; break;
    case SK_MOA_EXPERTS: mo->experts = i; break;
    case SK_MOA_SLOTS: mo->slots = i; break;
    case SK_MOA_DIM: mo->rr = 0, mo->dim = i; break;
    case SK_MOA_RR: mo->dim = 0, mo->rr = (float)v->x; break;
    default:
        return petal_fail(err, PETAL_EINPUT, "'%s' is not a method setting", d->key);
    }
    return PETAL_OK;
}

int ast_method_set(ast_method *m, const char *key, const char *text, petal_err *err) {
    setting_value v;
    const setting_def *d;
    int st = setting_parse_text(&v, &d, key, text, err);
    if (!st && !(d->flags & SETTING_METHOD))
        return petal_fail(err, PETAL_EINPUT, "'%s' is not a method setting", key);
    return st ? st : ast_method_apply(m, d, &v, err);
}

static int from_rr(float rr, int C) {
    int d = (int)lround(C / rr);
    return d > 0 ? d : 1;
}

int ast_method_resolve(ast_method *m, int C, int L, petal_err *err) {
    (void)L;
    if (m->lora.targets && m->lora.rank == 0) m->lora.rank = from_rr(m->lora.rr, C);
    adapter_config *ad = &m->adapter;
    if ((ad->at_mhsa || ad->at_ffn) && ad->dim == 0) ad->dim = from_rr(ad->rr > 0 ? ad->rr : 64, C);
    if (m->lora.targets && m->lora.rank > C)
        return petal_fail(err, PETAL_EINPUT, "lora.rank %d is larger than the hidden size %d",
                          m->lora.rank, C);
    if ((ad->at_mhsa || ad->at_ffn) && ad->dim > C)
        return petal_fail(err, PETAL_EINPUT, "adapter.dim %d is larger than the hidden size %d",
                          ad->dim, C);
    if (ad->seq_add && !(ad->sequential && !ad->after))
        return petal_fail(err, PETAL_EINPUT,
                          "adapter.seq_add applies to adapter.conf=sequential with "
                          "adapter.position=before only");
    if (m->prefix.tokens % 2)
        return petal_fail(err, PETAL_EINPUT,
                          "prefix.tokens must be even (P/2 keys and P/2 values), got %d",
                          m->prefix.tokens);
    moa_config *mo = &m->moa;
    if (mo->kind != MOA_NONE) {
        if (mo->dim == 0) mo->dim = from_rr(mo->rr > 0 ? mo->rr : 64, C);
        if (mo->dim > C)
            return petal_fail(err, PETAL_EINPUT, "moa.dim %d is larger than the hidden size %d",
                              mo->dim, C);
        if (mo->experts < 1 || mo->experts > 64 || (mo->kind == MOA_SOFT && mo->slots < 1))
            return petal_fail(err, PETAL_EINPUT,
                              "moa needs 1 to 64 experts (and slots >= 1 for soft), got %d",
                              mo->experts);
        if (!mo->at_mhsa && !mo->at_ffn) mo->at_ffn = 1;
    }
    return PETAL_OK;
}

const char *ast_method_name(const ast_method *m) { return m->name; }

float ast_method_default_lr(const ast_method *m) {
    if (m->base == METHOD_FULL) return 5e-5f;
    if (m->prompt.tokens || m->prefix.tokens) return 1e-2f;
    if (m->base == METHOD_LINEAR && !m->lora.targets && !m->adapter.at_ffn &&
        !m->adapter.at_mhsa && m->moa.kind == MOA_NONE)
        return 1e-3f;  // linear probing
    return 5e-3f;      // bitfit, LoRA, adapters, MoA
}

float ast_method_lora_scaling(const ast_method *m) {
    return m->lora.rr > 0 ? m->lora.alpha / m->lora.rr : m->lora.alpha / (float)m->lora.rank;
}

void ast_method_label(char *out, size_t n, const ast_method *m) {
    static const char *const bases[] = {"full", "linear", "BitFit", "BitFit (petal's set)"};
    size_t o = 0;
#define ADD(...) (o += (size_t)snprintf(out + o, o < n ? n - o : 0, __VA_ARGS__))
    out[0] = 0;
    int hooks = m->lora.targets || m->adapter.at_mhsa || m->adapter.at_ffn || m->prompt.tokens ||
                m->prefix.tokens || m->moa.kind != MOA_NONE;
    if (!hooks || m->base != METHOD_LINEAR) ADD("%s", bases[m->base]);
    if (m->lora.targets) {
        ADD("%sLoRA r%d (", o ? " + " : "", m->lora.rank);
        for (int i = 0, k = 0; i < 4; i++)
            if (m->lora.targets & (1u << i)) ADD("%s%c", k++ ? "," : "", "qkvo"[i]);
        ADD(")");
    }
    const adapter_config *ad = &m->adapter;
    if (ad->at_mhsa || ad->at_ffn) {
        const char *kind = ad->block == BLOCK_CONFORMER ? (ad->at_mhsa && ad->at_ffn ? "Conformer Houlsby" : "Conformer")
                           : ad->at_mhsa && ad->at_ffn ? "Houlsby" : "Pfeiffer";
        ADD("%s%s d%d", o ? " + " : "", kind, ad->dim);
        if (ad->block == BLOCK_CONFORMER) ADD(" k%d", ad->kernel);
        if (ad->at_mhsa && !ad->at_ffn) ADD(" MHSA");
        if (ad->sequential || ad->after)
            ADD(" (%s, %s)", ad->sequential ? "sequential" : "parallel", ad->after ? "after" : "before");
    }
    if (m->prompt.tokens) ADD("%sprompt%s P%d", o ? " + " : "", m->prompt.deep ? " deep" : "", m->prompt.tokens);
    if (m->prefix.tokens) ADD("%sprefix P%d", o ? " + " : "", m->prefix.tokens);
    if (m->moa.kind == MOA_DENSE) ADD("%sDense-MoA %dx d%d", o ? " + " : "", m->moa.experts, m->moa.dim);
    if (m->moa.kind == MOA_SOFT)
        ADD("%sSoft-MoA %dx%d d%d", o ? " + " : "", m->moa.experts, m->moa.slots, m->moa.dim);
#undef ADD
}
