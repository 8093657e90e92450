// ==== Method configuration: presets, key=value settings, validation ============
#include "core/method.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
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
        return petal_fail(err, PETAL_EINPUT,
                          "unknown method '%s' (full, linear, bitfit, bitfit_petal, lora, "
                          "adapter_pfeiffer, adapter_houlsby, conformer, prompt_shallow, "
                          "prompt_deep, prefix, dense_moa, soft_moa; paper presets: lora_paper, "
                          "adapter_pfeiffer_paper, adapter_houlsby_paper, conformer_paper_speech, "
                          "conformer_paper_audio, prompt_shallow_paper, prompt_deep_paper, "
                          "prefix_paper)",
                          name);
    return PETAL_OK;
}

static int parse_int(int *out, const char *key, const char *v, int lo, int hi, petal_err *err) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi)
        return petal_fail(err, PETAL_EINPUT, "%s expects an integer in [%d, %d], got '%s'", key,
                          lo, hi, v);
    *out = (int)x;
    return PETAL_OK;
}

static int parse_float(float *out, const char *key, const char *v, petal_err *err) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || end == v || !(x > 0) || !isfinite(x))
        return petal_fail(err, PETAL_EINPUT, "%s expects a positive number, got '%s'", key, v);
    *out = (float)x;
    return PETAL_OK;
}

static int parse_bool(int *out, const char *key, const char *v, petal_err *err) {
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *out = 0;
    else return petal_fail(err, PETAL_EINPUT, "%s expects true or false, got '%s'", key, v);
    return PETAL_OK;
}

// "mhsa", "ffn" or "both" -> the two site flags.
static int parse_sites(int *mhsa, int *ffn, const char *key, const char *v, petal_err *err) {
    if (!strcmp(v, "mhsa")) *mhsa = 1, *ffn = 0;
    else if (!strcmp(v, "ffn")) *mhsa = 0, *ffn = 1;
    else if (!strcmp(v, "both")) *mhsa = 1, *ffn = 1;
    else return petal_fail(err, PETAL_EINPUT, "%s expects mhsa, ffn or both, got '%s'", key, v);
    return PETAL_OK;
}

int ast_method_set(ast_method *m, const char *key, const char *v, petal_err *err) {
    lora_config *lo = &m->lora;
    adapter_config *ad = &m->adapter;
    moa_config *mo = &m->moa;
    if (!strcmp(key, "base")) {
        if (!strcmp(v, "full")) m->base = METHOD_FULL;
        else if (!strcmp(v, "linear")) m->base = METHOD_LINEAR;
        else if (!strcmp(v, "bitfit")) m->base = METHOD_BITFIT;
        else if (!strcmp(v, "bitfit_petal")) m->base = METHOD_BITFIT_PETAL;
        else return petal_fail(err, PETAL_EINPUT,
                               "base expects full, linear, bitfit or bitfit_petal, got '%s'", v);
        return PETAL_OK;
    }
    if (!strcmp(key, "lora.targets")) {
        unsigned t = 0;
        for (const char *c = v; *c; c++) {
            switch (*c) {
            case 'q': t |= LORA_Q; break;
            case 'k': t |= LORA_K; break;
            case 'v': t |= LORA_V; break;
            case 'o': t |= LORA_O; break;
            default:
                return petal_fail(err, PETAL_EINPUT,
                                  "lora.targets expects letters of q, k, v, o (e.g. qv), got '%s'", v);
            }
        }
        lo->targets = t;
        if (!lo->rank && lo->rr == 0) lo->rr = 64;
        return PETAL_OK;
    }
    if (!strcmp(key, "lora.rank")) return lo->rr = 0, parse_int(&lo->rank, key, v, 1, 1 << 16, err);
    if (!strcmp(key, "lora.rr")) return lo->rank = 0, parse_float(&lo->rr, key, v, err);
    if (!strcmp(key, "lora.alpha")) return parse_float(&lo->alpha, key, v, err);
    if (!strcmp(key, "lora.init")) {
        if (!strcmp(v, "reference")) lo->init_paper = 0;
        else if (!strcmp(v, "paper")) lo->init_paper = 1;
        else return petal_fail(err, PETAL_EINPUT, "lora.init expects reference or paper, got '%s'", v);
        return PETAL_OK;
    }
    if (!strcmp(key, "adapter.type")) {
        if (!strcmp(v, "pfeiffer")) ad->at_ffn = 1, ad->at_mhsa = 0;
        else if (!strcmp(v, "houlsby")) ad->at_ffn = 1, ad->at_mhsa = 1;
        else return petal_fail(err, PETAL_EINPUT, "adapter.type expects pfeiffer or houlsby, got '%s'", v);
        if (!ad->dim && ad->rr == 0) ad->rr = 64;
        return PETAL_OK;
    }
    if (!strcmp(key, "adapter.location")) {
        if (!ad->dim && ad->rr == 0) ad->rr = 64;
        return parse_sites(&ad->at_mhsa, &ad->at_ffn, key, v, err);
    }
    if (!strcmp(key, "adapter.block")) {
        if (!strcmp(v, "bottleneck")) ad->block = BLOCK_BOTTLENECK;
        else if (!strcmp(v, "conformer")) ad->block = BLOCK_CONFORMER;
        else return petal_fail(err, PETAL_EINPUT, "adapter.block expects bottleneck or conformer, got '%s'", v);
        return PETAL_OK;
    }
    if (!strcmp(key, "adapter.conf")) {
        if (!strcmp(v, "parallel")) ad->sequential = 0;
        else if (!strcmp(v, "sequential")) ad->sequential = 1;
        else return petal_fail(err, PETAL_EINPUT, "adapter.conf expects parallel or sequential, got '%s'", v);
        return PETAL_OK;
    }
    if (!strcmp(key, "adapter.position")) {
        if (!strcmp(v, "before")) ad->after = 0;
        else if (!strcmp(v, "after")) ad->after = 1;
        else return petal_fail(err, PETAL_EINPUT, "adapter.position expects before or after, got '%s'", v);
        return PETAL_OK;
    }
    if (!strcmp(key, "adapter.residual")) return parse_bool(&ad->residual, key, v, err);
    if (!strcmp(key, "adapter.seq_add")) return parse_bool(&ad->seq_add, key, v, err);
    if (!strcmp(key, "adapter.dim")) return ad->rr = 0, parse_int(&ad->dim, key, v, 1, 1 << 16, err);
    if (!strcmp(key, "adapter.rr")) return ad->dim = 0, parse_float(&ad->rr, key, v, err);
    if (!strcmp(key, "adapter.kernel")) return parse_int(&ad->kernel, key, v, 1, 1023, err);
    if (!strcmp(key, "adapter.init")) {
        if (!strcmp(v, "petal")) ad->init_reference = 0;
        else if (!strcmp(v, "reference")) ad->init_reference = 1;
        else return petal_fail(err, PETAL_EINPUT, "adapter.init expects petal or reference, got '%s'", v);
        return PETAL_OK;
    }
    if (!strcmp(key, "adapter.norm")) {
        if (!strcmp(v, "applied")) ad->norm_discarded = 0;
        else if (!strcmp(v, "discarded")) ad->norm_discarded = 1;
        else return petal_fail(err, PETAL_EINPUT, "adapter.norm expects applied or discarded, got '%s'", v);
        return PETAL_OK;
    }
    if (!strcmp(key, "prompt.tokens")) return parse_int(&m->prompt.tokens, key, v, 0, 4096, err);
    if (!strcmp(key, "prompt.deep")) return parse_bool(&m->prompt.deep, key, v, err);
    if (!strcmp(key, "prefix.tokens")) return parse_int(&m->prefix.tokens, key, v, 0, 4096, err);
    if (!strcmp(key, "moa.kind")) {
        if (!strcmp(v, "dense")) mo->kind = MOA_DENSE;
        else if (!strcmp(v, "soft")) mo->kind = MOA_SOFT;
        else return petal_fail(err, PETAL_EINPUT, "moa.kind expects dense or soft, got '%s'", v);
        if (!mo->at_ffn && !mo->at_mhsa) mo->at_ffn = 1;
        if (!mo->experts) mo->experts = 4;
        if (mo->kind == MOA_SOFT && !mo->slots) mo->slots = 1;
        if (!mo->dim && mo->rr == 0) mo->rr = 64;
        return PETAL_OK;
    }
    if (!strcmp(key, "moa.init")) {
        if (!strcmp(v, "petal")) mo->init_reference = 0;
        else if (!strcmp(v, "reference")) mo->init_reference = 1;
        else return petal_fail(err, PETAL_EINPUT, "moa.init expects petal or reference, got '%s'", v);
        return PETAL_OK;
    }
    if (!strcmp(key, "moa.location")) return parse_sites(&mo->at_mhsa, &mo->at_ffn, key, v, err);
    if (!strcmp(key, "moa.experts")) return parse_int(&mo->experts, key, v, 1, 1024, err);
    if (!strcmp(key, "moa.slots")) return parse_int(&mo->slots, key, v, 1, 1024, err);
    if (!strcmp(key, "moa.dim")) return mo->rr = 0, parse_int(&mo->dim, key, v, 1, 1 << 16, err);
    if (!strcmp(key, "moa.rr")) return mo->dim = 0, parse_float(&mo->rr, key, v, err);
    return petal_fail(err, PETAL_EINPUT, "unknown method setting '%s' (see docs/METHODS.md)", key);
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
