// Flat key/value configuration: every trial setting is a dotted key
// ("train.epochs", "lora.rank") with a string value, read from YAML (nested
// mappings flatten to dotted keys) or set from the command line. One mechanism
// for trial files, --set overrides and (later) sweep expansion. Each entry
// remembers where it came from, so errors name file, line and column.
#ifndef PETAL_CONFIG_H
#define PETAL_CONFIG_H
#include "core/common.h"

typedef struct {
    char *key, *value;
    char src[256];  // file name, or "--set" / a flag name
    int line, col;  // 1-based position of the value in src (0 when not from a file)
    int kline, kcol;  // position of the key (0 when not from a file)
} config_entry;

typedef struct {
    config_entry *e;
    int n, cap;
    int *index;  // (icap) hash of key -> entry index + 1 (0 = empty); lookups are O(1)
    int icap;
} config_kv;

// Longest dotted key (bytes, with its NUL) and deepest YAML nesting accepted.
#define CONFIG_KEY_MAX 256
#define CONFIG_DEPTH_MAX 64

// Sets key to value (replacing an earlier value; order of first setting kept).
void config_set(config_kv *kv, const char *key, const char *value, const char *src, int line,
                int col);
// The entry for key, or NULL.
const config_entry *config_find(const config_kv *kv, const char *key);
const char *config_get(const config_kv *kv, const char *key);
// Reads a YAML mapping into kv (flattening nested mappings). Scalars only:
// sequences are sweep axes, not trial settings. Errors name path:line:column:
// syntax, a key set twice in the file, nesting deeper than CONFIG_DEPTH_MAX,
// and a file with no settings at all (empty, only comments, or {}).
int config_read_yaml(config_kv *kv, const char *path, petal_err *err);
// The same from YAML text in memory (no settings is fine here: a trial's
// identity text may be empty); errors name `name`:line:column.
int config_parse_yaml(config_kv *kv, const char *text, const char *name, petal_err *err);
// "key=value" from the command line.
int config_set_arg(config_kv *kv, const char *arg, petal_err *err);
// "where" prefix for an entry's error messages: "file:line:col" or its src.
void config_where(char *buf, size_t n, const config_entry *e);
// The same at the entry's key (for an unknown key).
void config_where_key(char *buf, size_t n, const config_entry *e);
// The settings as YAML text, one "key: value" line per entry in key order
// (canonical: two configs with the same settings give the same text).
char *config_to_yaml(const config_kv *kv);
void config_free(config_kv *kv);
#endif
