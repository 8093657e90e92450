// The one table of trial settings: every key a trial file, `--set`, a sweep
// axis or a report column can name, with its type, range, default and help.
// Trial settings (core/trialspec.c) and method settings (core/method.c) are
// parsed through it, `petal train --keys` prints it, and a trial's identity
// (the canonical settings text that checkpoints and the results store key on)
// is computed from it.
#ifndef PETAL_SETTINGS_H
#define PETAL_SETTINGS_H
#include <stdio.h>

#include "core/config.h"

typedef enum { SET_INT, SET_NUM, SET_BOOL, SET_TEXT, SET_CHOICE } setting_type;

// Every key, in the order `petal train --keys` lists them.
typedef enum {
    SK_DATASET_LAYOUT,
    SK_DATASET_ROOT,
    SK_DATASET_FOLD,
    SK_DATASET_SHOTS,
    SK_DATASET_FEWSHOT,
    SK_DATASET_SPLIT_SEED,
    SK_FEATURES_FRAMES,
    SK_FEATURES_MEL_BINS,
    SK_FEATURES_CACHE,
    SK_MODEL_BACKBONE,
    SK_MODEL_SIZE,
    SK_MODEL_POOL,
    SK_MODEL_DTYPE,
    SK_METHOD,
    SK_TRAIN_EPOCHS,
    SK_TRAIN_BATCH,
    SK_TRAIN_LR,
    SK_TRAIN_WEIGHT_DECAY,
    SK_TRAIN_SEED,
    SK_TRAIN_SPECAUG,
    SK_TRAIN_FREQ_MASK,
    SK_TRAIN_TIME_MASK,
    SK_TRAIN_THREADS,
    SK_BASE,
    SK_LORA_TARGETS,
    SK_LORA_RANK,
    SK_LORA_RR,
    SK_LORA_ALPHA,
    SK_LORA_INIT,
    SK_ADAPTER_TYPE,
    SK_ADAPTER_LOCATION,
    SK_ADAPTER_BLOCK,
    SK_ADAPTER_CONF,
    SK_ADAPTER_POSITION,
    SK_ADAPTER_RESIDUAL,
    SK_ADAPTER_SEQ_ADD,
    SK_ADAPTER_DIM,
    SK_ADAPTER_RR,
    SK_ADAPTER_KERNEL,
    SK_ADAPTER_INIT,
    SK_ADAPTER_NORM,
    SK_PROMPT_TOKENS,
    SK_PROMPT_DEEP,
    SK_PREFIX_TOKENS,
    SK_MOA_KIND,
    SK_MOA_INIT,
    SK_MOA_LOCATION,
    SK_MOA_EXPERTS,
    SK_MOA_SLOTS,
    SK_MOA_DIM,
    SK_MOA_RR,
    SK_DRILL,
    SK_DRILL_SECONDS,
    SK_COUNT
} setting_id;

enum {
    SETTING_NOT_IDENTITY = 1,  // changes no result (threads, cache folders): not in a trial's identity
    SETTING_ALL = 2,           // SET_INT that also takes "all" (read as 0)
    SETTING_OPEN_LO = 4,       // SET_NUM whose range excludes lo
    SETTING_METHOD = 8,        // a method setting (applied by core/method.c)
};

typedef struct {
    setting_id id;
    const char *key;
    setting_type type;
    double lo, hi;        // SET_INT and SET_NUM range (inclusive unless SETTING_OPEN_LO)
    const char *choices;  // SET_CHOICE: "a|b|c"
    const char *dflt;     // the default as the reference prints it ("recipe": per dataset)
    unsigned flags;       // SETTING_*
    const char *help;
} setting_def;

// A value converted by its key's type.
typedef struct {
    long i;            // SET_INT, SET_BOOL (0/1), SET_CHOICE (index into choices)
    double x;          // SET_NUM
    const char *text;  // the text as given (SET_TEXT; every type)
} setting_value;

extern const setting_def settings_table[SK_COUNT];

// The definition of key, or NULL.
const setting_def *setting_find(const char *key);
// Converts an entry's text by its key's type and range. Errors name the
// entry's file:line:column (or its --set / flag), the key, what it expects,
// and for an unknown key the nearest known one.
int setting_parse(setting_value *v, const setting_def **def, const config_entry *e,
                  petal_err *err);
// The same for a bare key=value (no source position); errors name the key.
int setting_parse_text(setting_value *v, const setting_def **def, const char *key,
                       const char *text, petal_err *err);
// Levenshtein distance of two short names (99 for names over 63 bytes).
int setting_distance(const char *a, const char *b);
// The known key nearest to key (edit distance), or NULL when none is close.
const char *setting_nearest(const char *key);

// text in its key's canonical form (integers without leading zeros or signs,
// numbers as %.9g, booleans true/false); text itself when the key or the value
// is not valid. buf (n bytes) holds the result when it differs.
const char *setting_normalize(char *buf, size_t n, const char *key, const char *text);

// A trial's identity: the canonical text of its settings (one `key: "value"`
// line per key, sorted; values normalised by type, so "1e-3" and "0.001" are
// one trial), without the keys that change no result (train.threads,
// features.cache). fold > 0 replaces dataset.fold (one fold of an all-folds
// trial is the same computation as that fold's own trial). Checkpoints, the
// results store and resume key on it. kv must have parsed cleanly. Free it.
char *trial_identity(const config_kv *kv, int fold);

// The key reference: Markdown table (markdown) or aligned text.
void settings_print(FILE *out, int markdown);

// One number parser for the whole program (settings, command-line flags):
// the whole text must be a finite number; integers in [lo, hi].
int petal_parse_long(long *out, const char *text, long lo, long hi);
int petal_parse_double(double *out, const char *text);
#endif
