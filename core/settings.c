// ==== The settings table: keys, types, ranges, defaults, help; identity ==========
#include "core/settings.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ID SETTING_NOT_IDENTITY
#define M SETTING_METHOD
#define BIG 2147483647.0

const setting_def settings_table[SK_COUNT] = {
    [SK_DATASET_LAYOUT] = {SK_DATASET_LAYOUT, "dataset.layout", SET_CHOICE, 0, 0,
                           "esc50|us8k|gsc|fsc|folder|synthetic", "synthetic", 0,
                           "corpus layout (README: Datasets); synthetic = learnable random features"},
    [SK_DATASET_ROOT] = {SK_DATASET_ROOT, "dataset.root", SET_TEXT, 0, 0, NULL, "", 0,
                         "corpus folder (or the folder holding it); required but for synthetic"},
    [SK_DATASET_FOLD] = {SK_DATASET_FOLD, "dataset.fold", SET_INT, 1, 100, NULL, "1", SETTING_ALL,
                         "test fold of the protocol, or all (every fold: mean and std)"},
    [SK_DATASET_SHOTS] = {SK_DATASET_SHOTS, "dataset.shots", SET_INT, 0, 1 << 20, NULL, "0", 0,
                          "k training examples per class (0 = the whole training split)"},
    [SK_DATASET_FEWSHOT] = {SK_DATASET_FEWSHOT, "dataset.fewshot", SET_CHOICE, 0, 0,
                            "uniform|first", "uniform", 0,
                            "few-shot draw: uniform from train.seed, or the reference's first k"},
    [SK_DATASET_SPLIT_SEED] = {SK_DATASET_SPLIT_SEED, "dataset.split_seed", SET_INT, 0, BIG, NULL,
                               "0", 0, "seed of the folder layout's split when it has no lists"},
    [SK_FEATURES_FRAMES] = {SK_FEATURES_FRAMES, "features.frames", SET_INT, 16, 100000, NULL,
                            "recipe", 0, "max_length in frames (ESC-50 500, US8K 400, GSC 100, FSC 400)"},
    [SK_FEATURES_MEL_BINS] = {SK_FEATURES_MEL_BINS, "features.mel_bins", SET_INT, 16, 1024, NULL,
                              "128", 0, "mel bins of the fbank (32 for synthetic)"},
    [SK_FEATURES_CACHE] = {SK_FEATURES_CACHE, "features.cache", SET_TEXT, 0, 0, NULL,
                           "<root>/.petal-cache", ID, "feature cache folder"},
    [SK_MODEL_BACKBONE] = {SK_MODEL_BACKBONE, "model.backbone", SET_TEXT, 0, 0, NULL, "", 0,
                           "backbone HDF5 file (petal model import / init / pretrain)"},
    [SK_MODEL_SIZE] = {SK_MODEL_SIZE, "model.size", SET_CHOICE, 0, 0, "tiny|small|base", "tiny", 0,
                       "size of a random backbone when model.backbone is unset"},
    [SK_MODEL_POOL] = {SK_MODEL_POOL, "model.pool", SET_CHOICE, 0, 0,
                       "all|cls|cls_dist|prompts|speech|prompts+speech", "all", 0,
                       "tokens the classifier reads after the final LayerNorm"},
    [SK_MODEL_DTYPE] = {SK_MODEL_DTYPE, "model.dtype", SET_CHOICE, 0, 0, "fp32|bf16", "fp32", 0,
                        "frozen backbone GEMM weights: fp32, or bf16 with float32 accumulation "
                        "(AVX512-BF16/AMX CPUs; trained tensors stay fp32)"},
    [SK_METHOD] = {SK_METHOD, "method", SET_CHOICE, 0, 0,
                   "full|linear|bitfit|bitfit_petal|lora|adapter_pfeiffer|adapter_houlsby|conformer|"
                   "prompt_shallow|prompt_deep|prefix|dense_moa|soft_moa|lora_paper|"
                   "adapter_pfeiffer_paper|adapter_houlsby_paper|conformer_paper_speech|"
                   "conformer_paper_audio|prompt_shallow_paper|prompt_deep_paper|prefix_paper",
                   "linear", 0, "method preset; the method keys below modify it (docs/METHODS.md)"},
    [SK_TRAIN_EPOCHS] = {SK_TRAIN_EPOCHS, "train.epochs", SET_INT, 1, 100000, NULL, "recipe", 0,
                         "epochs (ESC-50 50, US8K 30, GSC 75, FSC 75)"},
    [SK_TRAIN_BATCH] = {SK_TRAIN_BATCH, "train.batch", SET_INT, 1, 65536, NULL, "recipe", 0,
                        "batch size (ESC-50 32, US8K 32, GSC 128, FSC 32)"},
    [SK_TRAIN_LR] = {SK_TRAIN_LR, "train.lr", SET_NUM, 0, 1e3, NULL, "method", 0,
                     "peak learning rate of the cosine schedule (full 5e-5, linear 1e-3, "
                     "BitFit/LoRA/adapters/MoA 5e-3, prompt/prefix 1e-2)"},
    [SK_TRAIN_WEIGHT_DECAY] = {SK_TRAIN_WEIGHT_DECAY, "train.weight_decay", SET_NUM, 0, 1e3, NULL,
                               "0.1", 0, "AdamW weight decay"},
    [SK_TRAIN_SEED] = {SK_TRAIN_SEED, "train.seed", SET_INT, 0, BIG, NULL, "1", 0,
                       "seed of initialisation, few-shot draw, shuffling and SpecAugment"},
    [SK_TRAIN_SPECAUG] = {SK_TRAIN_SPECAUG, "train.specaug", SET_BOOL, 0, 0, NULL, "recipe", 0,
                          "SpecAugment on training batches (on for ESC-50 and US8K)"},
    [SK_TRAIN_FREQ_MASK] = {SK_TRAIN_FREQ_MASK, "train.freq_mask", SET_INT, 0, 4096, NULL, "24", 0,
                            "SpecAugment frequency mask, at most this many bins"},
    [SK_TRAIN_TIME_MASK] = {SK_TRAIN_TIME_MASK, "train.time_mask", SET_INT, 0, 100000, NULL, "80",
                            0, "SpecAugment time mask, at most this many frames"},
    [SK_TRAIN_THREADS] = {SK_TRAIN_THREADS, "train.threads", SET_INT, 0, 4096, NULL, "0", ID,
                          "threads (0: SLURM_CPUS_PER_TASK, else every CPU)"},
    [SK_BASE] = {SK_BASE, "base", SET_CHOICE, 0, 0, "full|linear|bitfit|bitfit_petal", "preset", M,
                 "what of the backbone trains besides the hooks (bitfit: the reference's biases; "
                 "bitfit_petal: also the patch bias and the final LayerNorm weight)"},
    [SK_LORA_TARGETS] = {SK_LORA_TARGETS, "lora.targets", SET_TEXT, 0, 0, NULL, "qv (lora)", M,
                         "LoRA targets: letters of q, k, v, o"},
    [SK_LORA_RANK] = {SK_LORA_RANK, "lora.rank", SET_INT, 1, 65536, NULL, "", M,
                      "LoRA rank r (else from lora.rr)"},
    [SK_LORA_RR] = {SK_LORA_RR, "lora.rr", SET_NUM, 0, 1e6, NULL, "64", M | SETTING_OPEN_LO,
                    "LoRA reduction rate: r = round(C / rr), scaling alpha / rr"},
    [SK_LORA_ALPHA] = {SK_LORA_ALPHA, "lora.alpha", SET_NUM, 0, 1e6, NULL, "8", M | SETTING_OPEN_LO,
                       "LoRA alpha"},
    [SK_LORA_INIT] = {SK_LORA_INIT, "lora.init", SET_CHOICE, 0, 0, "reference|paper", "reference",
                      M, "reference: A = 0; paper: B = 0 (the LoRA paper)"},
    [SK_ADAPTER_TYPE] = {SK_ADAPTER_TYPE, "adapter.type", SET_CHOICE, 0, 0, "pfeiffer|houlsby", "",
                         M, "Pfeiffer (FFN site) or Houlsby (MHSA and FFN sites)"},
    [SK_ADAPTER_LOCATION] = {SK_ADAPTER_LOCATION, "adapter.location", SET_CHOICE, 0, 0,
                             "mhsa|ffn|both", "ffn", M, "adapter sites"},
    [SK_ADAPTER_BLOCK] = {SK_ADAPTER_BLOCK, "adapter.block", SET_CHOICE, 0, 0,
                          "bottleneck|conformer", "bottleneck", M, "adapter block"},
    [SK_ADAPTER_CONF] = {SK_ADAPTER_CONF, "adapter.conf", SET_CHOICE, 0, 0, "parallel|sequential",
                         "parallel", M, "adapter beside the sublayer, or after it"},
    [SK_ADAPTER_POSITION] = {SK_ADAPTER_POSITION, "adapter.position", SET_CHOICE, 0, 0,
                             "before|after", "before", M,
                             "adapter reads the LayerNorm output (before) or the sublayer's (after)"},
    [SK_ADAPTER_RESIDUAL] = {SK_ADAPTER_RESIDUAL, "adapter.residual", SET_BOOL, 0, 0, NULL, "false",
                             M, "add the adapter's input to its output"},
    [SK_ADAPTER_SEQ_ADD] = {SK_ADAPTER_SEQ_ADD, "adapter.seq_add", SET_BOOL, 0, 0, NULL, "false", M,
                            "sequential-before only: S(A(ln)) + A(ln), as the reference's ablation code"},
    [SK_ADAPTER_DIM] = {SK_ADAPTER_DIM, "adapter.dim", SET_INT, 1, 65536, NULL, "", M,
                        "bottleneck size D (else from adapter.rr)"},
    [SK_ADAPTER_RR] = {SK_ADAPTER_RR, "adapter.rr", SET_NUM, 0, 1e6, NULL, "64",
                       M | SETTING_OPEN_LO, "adapter reduction rate: D = round(C / rr)"},
    [SK_ADAPTER_KERNEL] = {SK_ADAPTER_KERNEL, "adapter.kernel", SET_INT, 1, 1023, NULL, "31", M,
                           "Conformer depthwise kernel (even kernels pad as PyTorch's padding=\"same\")"},
    [SK_ADAPTER_INIT] = {SK_ADAPTER_INIT, "adapter.init", SET_CHOICE, 0, 0, "petal|reference",
                         "petal", M, "petal: down Kaiming, up zero; reference: both zero"},
    [SK_ADAPTER_NORM] = {SK_ADAPTER_NORM, "adapter.norm", SET_CHOICE, 0, 0, "applied|discarded",
                         "applied", M, "Conformer LayerNorm: applied, or computed and discarded as the reference"},
    [SK_PROMPT_TOKENS] = {SK_PROMPT_TOKENS, "prompt.tokens", SET_INT, 0, 4096, NULL, "24 (prompt)",
                          M, "prompt tokens P in place of the distillation token"},
    [SK_PROMPT_DEEP] = {SK_PROMPT_DEEP, "prompt.deep", SET_BOOL, 0, 0, NULL, "false", M,
                        "new prompt tokens before every layer"},
    [SK_PREFIX_TOKENS] = {SK_PREFIX_TOKENS, "prefix.tokens", SET_INT, 0, 4096, NULL, "24 (prefix)",
                          M, "prefix tokens P (even): P/2 keys and P/2 values per layer"},
    [SK_MOA_KIND] = {SK_MOA_KIND, "moa.kind", SET_CHOICE, 0, 0, "dense|soft", "", M,
                     "mixture of adapters: Dense-MoA (router) or Soft-MoA (slots)"},
    [SK_MOA_INIT] = {SK_MOA_INIT, "moa.init", SET_CHOICE, 0, 0, "petal|reference", "petal", M,
                     "expert initialisation, as adapter.init"},
    [SK_MOA_LOCATION] = {SK_MOA_LOCATION, "moa.location", SET_CHOICE, 0, 0, "mhsa|ffn|both", "ffn",
                         M, "mixture sites"},
    [SK_MOA_EXPERTS] = {SK_MOA_EXPERTS, "moa.experts", SET_INT, 1, 64, NULL, "4", M, "experts"},
    [SK_MOA_SLOTS] = {SK_MOA_SLOTS, "moa.slots", SET_INT, 1, 1024, NULL, "1", M,
                      "Soft-MoA slots per expert"},
    [SK_MOA_DIM] = {SK_MOA_DIM, "moa.dim", SET_INT, 1, 65536, NULL, "", M,
                    "expert bottleneck D (else from moa.rr)"},
    [SK_MOA_RR] = {SK_MOA_RR, "moa.rr", SET_NUM, 0, 1e6, NULL, "64", M | SETTING_OPEN_LO,
                   "expert reduction rate"},
    [SK_DRILL] = {SK_DRILL, "drill", SET_CHOICE, 0, 0, "none|noop|sleep|segv|abort|curve", "none", 0,
                  "sweeps only: a trial that does no training, for drills, tests and benchmarks "
                  "(noop: done at once; sleep: done after drill.seconds; segv / abort: crashes; "
                  "curve: scripted per-epoch accuracies)"},
    [SK_DRILL_SECONDS] = {SK_DRILL_SECONDS, "drill.seconds", SET_NUM, 0, 1e6, NULL, "1", 0,
                          "sweeps only: how long a sleep drill sleeps (a curve drill: per epoch)"},
};

#undef ID
#undef M

int petal_parse_long(long *out, const char *text, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int petal_parse_double(double *out, const char *text) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

const setting_def *setting_find(const char *key) {
    for (int i = 0; i < SK_COUNT; i++)
        if (!strcmp(settings_table[i].key, key)) return &settings_table[i];
    return NULL;
}

int setting_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 63 || nb > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[nb];
}

const char *setting_nearest(const char *key) {
    const char *best = NULL;
    int bd = 4;  // farther than 3 edits is no suggestion
    for (int i = 0; i < SK_COUNT; i++) {
        const char *k = settings_table[i].key, *dot = strchr(k, '.');
        int d = setting_distance(key, k);
        // "rank" for "lora.rank": the part after the dot alone
        if (dot && !strchr(key, '.') && setting_distance(key, dot + 1) < d) d = setting_distance(key, dot + 1);
        if (d < bd) bd = d, best = k;
    }
    return best;
}

// "a, b or c" from "a|b|c".
static void list_choices(char *buf, size_t n, const char *choices) {
    size_t o = 0;
    const char *p = choices;
    while (*p && o + 1 < n) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        const char *sep = !bar ? "" : strchr(bar + 1, '|') ? ", " : " or ";
        o += (size_t)snprintf(buf + o, n - o, "%.*s%s", (int)len, p, sep);
        if (!bar || o >= n) break;
        p = bar + 1;
    }
}

// Index of text among "a|b|c", or -1.
static int choice_index(const char *choices, const char *text) {
    size_t len = strlen(text);
    int i = 0;
    for (const char *p = choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, text, n)) return i;
        if (!bar) return -1;
        p = bar + 1;
    }
}

static int convert(setting_value *v, const setting_def *d, const char *where, const char *text,
                   petal_err *err) {
    v->text = text;
    v->i = 0;
    v->x = 0;
    char what[400];
    switch (d->type) {
    case SET_INT:
        if ((d->flags & SETTING_ALL) && !strcmp(text, "all")) return PETAL_OK;
        if (!petal_parse_long(&v->i, text, (long)d->lo, (long)d->hi)) return PETAL_OK;
        snprintf(what, sizeof what, "an integer in [%ld, %ld]%s", (long)d->lo, (long)d->hi,
                 d->flags & SETTING_ALL ? " or all" : "");
        break;
    case SET_NUM:
        if (!petal_parse_double(&v->x, text) &&
            (d->flags & SETTING_OPEN_LO ? v->x > d->lo : v->x >= d->lo) && v->x <= d->hi)
            return PETAL_OK;
        snprintf(what, sizeof what, "a number %s %g and <= %g",
                 d->flags & SETTING_OPEN_LO ? ">" : ">=", d->lo, d->hi);
        break;
    case SET_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "yes") || !strcmp(text, "1")) return v->i = 1, PETAL_OK;
        if (!strcmp(text, "false") || !strcmp(text, "no") || !strcmp(text, "0")) return PETAL_OK;
        snprintf(what, sizeof what, "true or false");
        break;
    case SET_TEXT:
        if (text[0] && strlen(text) < 4000) return PETAL_OK;
        snprintf(what, sizeof what, "a non-empty value shorter than 4000 bytes");
        break;
    case SET_CHOICE:
        if ((v->i = choice_index(d->choices, text)) >= 0) return PETAL_OK;
        list_choices(what, sizeof what, d->choices);
        break;
    }
    return petal_fail(err, PETAL_EINPUT, "%s%s%s expects %s, got '%s'", where, where[0] ? ": " : "",
                      d->key, what, text);
}

static int lookup(const setting_def **def, const char *where, const char *key, petal_err *err) {
    if ((*def = setting_find(key))) return PETAL_OK;
    const char *near = setting_nearest(key);
    return petal_fail(err, PETAL_EINPUT, "%s%sunknown setting '%s'%s%s%s (petal train --keys lists them)",
                      where, where[0] ? ": " : "", key, near ? " (did you mean " : "",
                      near ? near : "", near ? "?)" : "");
}

int setting_parse(setting_value *v, const setting_def **def, const config_entry *e,
                  petal_err *err) {
    char where[300];
    config_where_key(where, sizeof where, e);  // an unknown key: point at the key
    int st = lookup(def, where, e->key, err);
    if (st) return st;
    config_where(where, sizeof where, e);  // a bad value: at the value
    return convert(v, *def, where, e->value, err);
}

int setting_parse_text(setting_value *v, const setting_def **def, const char *key,
                       const char *text, petal_err *err) {
    int st = lookup(def, "", key, err);
    return st ? st : convert(v, *def, "", text, err);
}

const char *setting_normalize(char *buf, size_t n, const char *key, const char *text) {
    const setting_def *d = setting_find(key);
    setting_value v;
    if (!d || convert(&v, d, "", text, NULL)) return text;
    if (d->type == SET_INT && strcmp(text, "all")) return snprintf(buf, n, "%ld", v.i), buf;
    if (d->type == SET_NUM) return snprintf(buf, n, "%.9g", v.x), buf;
    if (d->type == SET_BOOL) return v.i ? "true" : "false";
    return text;
}

char *trial_identity(const config_kv *kv, int fold) {
    config_kv id = {0};
    char num[64];
    for (int i = 0; i < kv->n; i++) {
        const config_entry *e = &kv->e[i];
        const setting_def *d = setting_find(e->key);
        if (d && (d->flags & SETTING_NOT_IDENTITY)) continue;
        config_set(&id, e->key, setting_normalize(num, sizeof num, e->key, e->value), "", 0, 0);
    }
    if (fold > 0) {
        snprintf(num, sizeof num, "%d", fold);
        config_set(&id, "dataset.fold", num, "", 0, 0);
    }
    char *text = config_to_yaml(&id);
    config_free(&id);
    return text;
}

void settings_print(FILE *out, int markdown) {
    if (markdown) fprintf(out, "| key | type | default | meaning |\n|---|---|---|---|\n");
    for (int i = 0; i < SK_COUNT; i++) {
        const setting_def *d = &settings_table[i];
        char type[400] = {0};
        switch (d->type) {
        case SET_INT:
            snprintf(type, sizeof type, "integer %ld..%ld%s", (long)d->lo, (long)d->hi,
                     d->flags & SETTING_ALL ? " or all" : "");
            break;
        case SET_NUM:
            snprintf(type, sizeof type, "number %s %g", d->flags & SETTING_OPEN_LO ? ">" : ">=", d->lo);
            break;
        case SET_BOOL: snprintf(type, sizeof type, "true|false"); break;
        case SET_TEXT: snprintf(type, sizeof type, "text"); break;
        case SET_CHOICE:
            // a Markdown cell cannot hold a bare '|'
            for (size_t o = 0, j = 0; (type[o] = d->choices[j]) && o + 3 < sizeof type; o++, j++)
                if (markdown && type[o] == '|') type[o++] = '\\', type[o] = '|';
            break;
        }
        const char *dflt = d->dflt && d->dflt[0] ? d->dflt : "-";
        if (markdown)
            fprintf(out, "| `%s` | %s | %s | %s%s |\n", d->key, type, dflt, d->help,
                    d->flags & SETTING_NOT_IDENTITY ? " (not part of a trial's identity)" : "");
        else
            fprintf(out, "%-20s %-28s %-12s %s\n", d->key, type, dflt, d->help);
    }
}
