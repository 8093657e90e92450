// ==== Trial settings from the flat config, with the reference recipe's defaults ====
#include "core/trialspec.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dataset.h"

// The reference recipe per dataset (REFERENCE.md): max_len, batch, epochs, SpecAugment.
static const struct {
    const char *layout;
    int frames, batch, epochs, specaug;
} recipe[] = {
    {"esc50", 500, 32, 50, 1}, {"us8k", 400, 32, 30, 1}, {"gsc", 100, 128, 75, 0},
    {"fsc", 400, 32, 75, 0},   {"folder", 100, 32, 30, 0}, {"synthetic", 48, 8, 5, 0},
};

static int bad(petal_err *err, const config_entry *e, const char *what) {
    char where[300];
    config_where(where, sizeof where, e);
    return petal_fail(err, PETAL_EINPUT, "%s: %s expects %s, got '%s'", where, e->key, what,
                      e->value);
}

static int get_int(int *out, const config_entry *e, int lo, int hi, petal_err *err) {
    char *end;
    errno = 0;
    long v = strtol(e->value, &end, 10);
    if (errno || *end || end == e->value || v < lo || v > hi) {
        char what[64];
        snprintf(what, sizeof what, "an integer in [%d, %d]", lo, hi);
        return bad(err, e, what);
    }
    *out = (int)v;
    return PETAL_OK;
}

static int get_float(float *out, const config_entry *e, petal_err *err) {
    char *end;
    errno = 0;
    double v = strtod(e->value, &end);
    if (errno || *end || end == e->value || !isfinite(v) || v < 0) return bad(err, e, "a number >= 0");
    *out = (float)v;
    return PETAL_OK;
}

static int get_bool(int *out, const config_entry *e, petal_err *err) {
    const char *v = e->value;
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) *out = 0;
    else return bad(err, e, "true or false");
    return PETAL_OK;
}

static int get_str(char *out, size_t n, const config_entry *e, petal_err *err) {
    if (strlen(e->value) >= n) return bad(err, e, "a shorter value");
    strcpy(out, e->value);
    return PETAL_OK;
}

static int is_method_key(const char *k) {
    static const char *prefixes[] = {"lora.", "adapter.", "prompt.", "prefix.", "moa."};
    if (!strcmp(k, "base")) return 1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(k, prefixes[i], strlen(prefixes[i]))) return 1;
    return 0;
}

int trial_spec_resolve(trial_spec *ts, const config_kv *kv, petal_err *err) {
    memset(ts, 0, sizeof *ts);
    strcpy(ts->layout, "synthetic");
    strcpy(ts->size, "tiny");
    ts->fold = 1;
    ts->mel_bins = -1;
    ts->frames = ts->batch = ts->epochs = ts->specaug = -1;
    ts->lr = -1.0f;
    ts->weight_decay = 0.1f;
    ts->seed = 1;
    ts->aug = specaug_config_ast();
    ts->pool = POOL_ALL;
    int st = ast_method_parse(&ts->method, "linear", err);
    // The method preset first: its settings are the base the other keys modify.
    const config_entry *me = config_find(kv, "method");
    if (me && ast_method_parse(&ts->method, me->value, err)) {
        char where[300], msg[sizeof err->msg];
        config_where(where, sizeof where, me);
        snprintf(msg, sizeof msg, "%s", err->msg);
        return petal_fail(err, PETAL_EINPUT, "%s: %s", where, msg);
    }
    int seed = 1, split_seed = 0;
    for (int i = 0; i < kv->n && !st; i++) {
        const config_entry *e = &kv->e[i];
        const char *k = e->key;
        if (!strcmp(k, "method")) continue;
        else if (!strcmp(k, "dataset.layout")) {
            st = get_str(ts->layout, sizeof ts->layout, e, err);
            if (!st && strcmp(ts->layout, "synthetic") && dataset_layout_parse(ts->layout) < 0)
                st = bad(err, e, "esc50, us8k, gsc, fsc, folder or synthetic");
        } else if (!strcmp(k, "dataset.root")) st = get_str(ts->root, sizeof ts->root, e, err);
        else if (!strcmp(k, "dataset.fold")) {
            if (!strcmp(e->value, "all")) ts->fold = 0;
            else st = get_int(&ts->fold, e, 1, 100, err);
        } else if (!strcmp(k, "dataset.shots")) st = get_int(&ts->shots, e, 0, 1 << 20, err);
        else if (!strcmp(k, "dataset.fewshot")) {
            if (!strcmp(e->value, "uniform")) ts->fewshot_first = 0;
            else if (!strcmp(e->value, "first")) ts->fewshot_first = 1;
            else st = bad(err, e, "uniform or first");
        } else if (!strcmp(k, "dataset.split_seed")) st = get_int(&split_seed, e, 0, 0x7fffffff, err);
        else if (!strcmp(k, "features.frames")) st = get_int(&ts->frames, e, 16, 100000, err);
        else if (!strcmp(k, "features.mel_bins")) st = get_int(&ts->mel_bins, e, 16, 1024, err);
        else if (!strcmp(k, "features.cache")) st = get_str(ts->cache, sizeof ts->cache, e, err);
        else if (!strcmp(k, "model.backbone")) st = get_str(ts->backbone, sizeof ts->backbone, e, err);
        else if (!strcmp(k, "model.size")) st = get_str(ts->size, sizeof ts->size, e, err);
        else if (!strcmp(k, "model.dtype")) {  // frozen backbone GEMM weights (core/bf16.c)
            if (!strcmp(e->value, "fp32") || !strcmp(e->value, "bf16")) ts->bf16 = e->value[0] == 'b';
            else st = bad(err, e, "fp32 or bf16");
        }
        else if (!strcmp(k, "model.pool")) {
            if (ast_pool_parse(&ts->pool, e->value, err))
                st = bad(err, e, "all, cls, cls_dist, prompts, speech or prompts+speech");
        } else if (!strcmp(k, "train.epochs")) st = get_int(&ts->epochs, e, 1, 100000, err);
        else if (!strcmp(k, "train.batch")) st = get_int(&ts->batch, e, 1, 65536, err);
        else if (!strcmp(k, "train.lr")) st = get_float(&ts->lr, e, err);
        else if (!strcmp(k, "train.weight_decay")) st = get_float(&ts->weight_decay, e, err);
        else if (!strcmp(k, "train.seed")) st = get_int(&seed, e, 0, 0x7fffffff, err);
        else if (!strcmp(k, "train.specaug")) st = get_bool(&ts->specaug, e, err);
        else if (!strcmp(k, "train.freq_mask")) st = get_int(&ts->aug.freq_mask_max, e, 0, 4096, err);
        else if (!strcmp(k, "train.time_mask")) st = get_int(&ts->aug.time_mask_max, e, 0, 100000, err);
        else if (!strcmp(k, "train.threads")) st = get_int(&ts->threads, e, 0, 4096, err);
        else if (is_method_key(k)) {
            if (ast_method_set(&ts->method, k, e->value, err)) {
                char where[300], msg[sizeof err->msg];
                config_where(where, sizeof where, e);
                snprintf(msg, sizeof msg, "%s", err->msg);
                st = petal_fail(err, PETAL_EINPUT, "%s: %s", where, msg);
            }
        } else {
            char where[300];
            config_where(where, sizeof where, e);
            st = petal_fail(err, PETAL_EINPUT, "%s: unknown setting '%s'", where, k);
        }
    }
    if (st) return st;
    ts->seed = (uint64_t)seed;
    ts->split_seed = (uint64_t)split_seed;
    for (size_t i = 0; i < sizeof recipe / sizeof recipe[0]; i++) {
        if (strcmp(recipe[i].layout, ts->layout)) continue;
        if (ts->frames < 0) ts->frames = recipe[i].frames;
        if (ts->batch < 0) ts->batch = recipe[i].batch;
        if (ts->epochs < 0) ts->epochs = recipe[i].epochs;
        if (ts->specaug < 0) ts->specaug = recipe[i].specaug;
    }
    if (ts->mel_bins < 0) ts->mel_bins = strcmp(ts->layout, "synthetic") ? 128 : 32;
    if (ts->lr < 0) ts->lr = ast_method_default_lr(&ts->method);
    if (strcmp(ts->layout, "synthetic") && !ts->root[0])
        return petal_fail(err, PETAL_EINPUT, "dataset.root is required for layout %s", ts->layout);
    if (!ts->cache[0] && ts->root[0])
        snprintf(ts->cache, sizeof ts->cache, "%.4000s/.petal-cache", ts->root);
    return PETAL_OK;
}
