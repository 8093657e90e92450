// ==== Flat key/value configuration and its YAML reader (libyaml) ================
#include "core/config.h"

#include <string.h>
#include <yaml.h>

static char *dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = petal_malloc(n);
    memcpy(d, s, n);
    return d;
}

// ---- hash index: key -> entry ---------------------------------------------------
// Open addressing over entry indices (slot = index + 1, 0 = empty), at most
// half full, so a YAML of 600k keys reads in linear time.

static uint64_t hash_key(const char *s) {
    uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void index_put(config_kv *kv, int i) {
    size_t mask = (size_t)kv->icap - 1, h = hash_key(kv->e[i].key) & mask;
    while (kv->index[h]) h = (h + 1) & mask;
    kv->index[h] = i + 1;
}

static void index_grow(config_kv *kv) {
    if (2 * (size_t)(kv->n + 1) <= (size_t)kv->icap) return;
    int cap = kv->icap ? kv->icap : 64;
    while (2 * (size_t)(kv->n + 1) > (size_t)cap) cap *= 2;
    free(kv->index);
    kv->index = petal_calloc((size_t)cap, sizeof *kv->index);
    kv->icap = cap;
    for (int i = 0; i < kv->n; i++) index_put(kv, i);
}

static int index_find(const config_kv *kv, const char *key) {
    if (!kv->icap) return -1;
    size_t mask = (size_t)kv->icap - 1, h = hash_key(key) & mask;
    for (; kv->index[h]; h = (h + 1) & mask)
        if (!strcmp(kv->e[kv->index[h] - 1].key, key)) return kv->index[h] - 1;
    return -1;
}

void config_set(config_kv *kv, const char *key, const char *value, const char *src, int line,
                int col) {
    int i = index_find(kv, key);
    config_entry *e;
    if (i < 0) {
        index_grow(kv);
        size_t cap = (size_t)kv->cap;
        kv->e = petal_grow(kv->e, &cap, (size_t)kv->n + 1, sizeof *kv->e);
        kv->cap = (int)cap;
        e = &kv->e[kv->n++];
        e->key = dup(key);
        index_put(kv, kv->n - 1);
    } else {
        e = &kv->e[i];
        free(e->value);
    }
    e->value = dup(value);
    snprintf(e->src, sizeof e->src, "%s", src);
    e->line = e->kline = line;
    e->col = e->kcol = col;
}

const config_entry *config_find(const config_kv *kv, const char *key) {
    int i = index_find(kv, key);
    return i < 0 ? NULL : &kv->e[i];
}

const char *config_get(const config_kv *kv, const char *key) {
    const config_entry *e = config_find(kv, key);
    return e ? e->value : NULL;
}

void config_where(char *buf, size_t n, const config_entry *e) {
    if (e->line) snprintf(buf, n, "%s:%d:%d", e->src, e->line, e->col);
    else snprintf(buf, n, "%s", e->src);
}

void config_where_key(char *buf, size_t n, const config_entry *e) {
    if (e->kline) snprintf(buf, n, "%s:%d:%d", e->src, e->kline, e->kcol);
    else config_where(buf, n, e);
}

int config_set_arg(config_kv *kv, const char *arg, petal_err *err) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return petal_fail(err, PETAL_EINPUT, "--set expects key=value, got '%s'", arg);
    if (eq - arg >= CONFIG_KEY_MAX)
        return petal_fail(err, PETAL_EINPUT, "--set: key longer than %d bytes", CONFIG_KEY_MAX - 1);
    char key[CONFIG_KEY_MAX];
    snprintf(key, sizeof key, "%.*s", (int)(eq - arg), arg);
    config_set(kv, key, eq + 1, "--set", 0, 0);
    return PETAL_OK;
}

// ---- YAML reader ------------------------------------------------------------------
// An iterative walk over libyaml's events (a stack of key prefixes, no
// recursion), so nesting depth costs no C stack; deeper than CONFIG_DEPTH_MAX
// is an error, as are duplicate keys (they would silently override).

typedef struct {
    yaml_parser_t p;
    const char *path;
    petal_err *err;
} reader;

static int next(reader *r, yaml_event_t *ev) {
    if (yaml_parser_parse(&r->p, ev)) return PETAL_OK;
    return petal_fail(r->err, PETAL_EINPUT, "%s:%zu:%zu: %s%s%s", r->path,
                      r->p.problem_mark.line + 1, r->p.problem_mark.column + 1,
                      r->p.problem ? r->p.problem : "malformed YAML",
                      r->p.context ? " " : "", r->p.context ? r->p.context : "");
}

// Reads one mapping (its start event already consumed) and everything nested
// in it. *nkeys counts the settings read.
static int read_mapping(reader *r, config_kv *kv, config_kv *seen, int *nkeys) {
    char key[CONFIG_KEY_MAX] = "";
    int plen[CONFIG_DEPTH_MAX + 1];  // key length at each open mapping
    int depth = 0;
    plen[0] = 0;
    for (;;) {
        yaml_event_t ev;
        int st = next(r, &ev);
        if (st) return st;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            if (depth == 0) return PETAL_OK;
            key[plen[--depth]] = 0;  // back to the parent's prefix
            continue;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            st = petal_fail(r->err, PETAL_EINPUT, "%s:%zu:%zu: expected a key", r->path,
                            ev.start_mark.line + 1, ev.start_mark.column + 1);
            yaml_event_delete(&ev);
            return st;
        }
        int kline = (int)ev.start_mark.line + 1, kcol = (int)ev.start_mark.column + 1;
        size_t base = (size_t)plen[depth], klen = strlen((const char *)ev.data.scalar.value);
        if (klen == 0) {
            yaml_event_delete(&ev);
            return petal_fail(r->err, PETAL_EINPUT, "%s:%d:%d: empty key", r->path, kline, kcol);
        }
        if (base + 1 + klen >= sizeof key) {
            yaml_event_delete(&ev);
            return petal_fail(r->err, PETAL_EINPUT, "%s:%d:%d: key longer than %d bytes", r->path,
                              kline, kcol, CONFIG_KEY_MAX - 1);
        }
        snprintf(key + base, sizeof key - base, "%s%s", base ? "." : "",
                 (const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if ((st = next(r, &ev))) return st;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        if (ev.type == YAML_SCALAR_EVENT) {
            const config_entry *first = config_find(seen, key);
            if (first) {
                st = petal_fail(r->err, PETAL_EINPUT,
                                "%s:%d:%d: duplicate key '%s' (first set at line %d, column %d)",
                                r->path, kline, kcol, key, first->line, first->col);
                yaml_event_delete(&ev);
                return st;
            }
            config_set(seen, key, "", r->path, kline, kcol);
            config_set(kv, key, (const char *)ev.data.scalar.value, r->path, line, col);
            config_entry *e = &kv->e[index_find(kv, key)];
            e->kline = kline, e->kcol = kcol;
            (*nkeys)++;
            key[base] = 0;
            yaml_event_delete(&ev);
        } else if (ev.type == YAML_MAPPING_START_EVENT) {
            yaml_event_delete(&ev);
            if (depth + 1 >= CONFIG_DEPTH_MAX)
                return petal_fail(r->err, PETAL_EINPUT,
                                  "%s:%d:%d: mappings nested deeper than %d levels", r->path, line,
                                  col, CONFIG_DEPTH_MAX);
            plen[++depth] = (int)strlen(key);
        } else {
            int alias = ev.type == YAML_ALIAS_EVENT;
            yaml_event_delete(&ev);
            return petal_fail(r->err, PETAL_EINPUT,
                              alias ? "%s:%d:%d: '%s': aliases (*name) are not read in trial files; write the value"
                                    : "%s:%d:%d: '%s' must be a single value (lists are sweep axes)",
                              r->path, line, col, key);
        }
    }
}

// Reads the document r->p is set up for: one mapping of settings (or none);
// *nkeys counts the settings read.
static int read_document(reader *r, config_kv *kv, int *nkeys) {
    const char *path = r->path;
    petal_err *err = r->err;
    yaml_event_t ev;
    config_kv seen = {0};  // keys of this document, for duplicates
    int st = PETAL_OK, mappings = 0;
    *nkeys = 0;
    while (!st) {
        if ((st = next(r, &ev))) break;
        yaml_event_type_t t = ev.type;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT) break;
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT ||
            t == YAML_DOCUMENT_END_EVENT)
            continue;
        if (t == YAML_MAPPING_START_EVENT && mappings++ == 0)
            st = read_mapping(r, kv, &seen, nkeys);
        else
            st = petal_fail(err, PETAL_EINPUT, "%s:%d:%d: expected %s", path, line, col,
                            mappings > 1 ? "one mapping of settings (one trial per file)"
                                         : "a mapping of settings");
    }
    config_free(&seen);
    return st;
}

int config_read_yaml(config_kv *kv, const char *path, petal_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return petal_fail(err, PETAL_EINPUT, "%s: cannot open", path);
    reader r = {.path = path, .err = err};
    if (!yaml_parser_initialize(&r.p)) {
        fclose(f);
        return petal_fail(err, PETAL_EFAIL, "%s: libyaml: out of memory", path);
    }
    yaml_parser_set_input_file(&r.p, f);
    int nkeys = 0, st = read_document(&r, kv, &nkeys);
    yaml_parser_delete(&r.p);
    fclose(f);
    // An empty file (or only comments, or {}) is a mistake, not a default trial.
    if (!st && nkeys == 0)
        st = petal_fail(err, PETAL_EINPUT, "%s: empty trial file (no settings)", path);
    return st;
}

int config_parse_yaml(config_kv *kv, const char *text, const char *name, petal_err *err) {
    reader r = {.path = name, .err = err};
    if (!yaml_parser_initialize(&r.p)) return petal_fail(err, PETAL_EFAIL, "%s: libyaml: out of memory", name);
    yaml_parser_set_input_string(&r.p, (const unsigned char *)text, strlen(text));
    int nkeys = 0, st = read_document(&r, kv, &nkeys);
    yaml_parser_delete(&r.p);
    return st;
}
static int cmp_entry(const void *a, const void *b) {
    return strcmp((*(const config_entry *const *)a)->key, (*(const config_entry *const *)b)->key);
}

char *config_to_yaml(const config_kv *kv) {
    const config_entry **order = petal_malloc(sizeof *order * (size_t)(kv->n ? kv->n : 1));
    size_t len = 1;
    for (int i = 0; i < kv->n; i++) {
        order[i] = &kv->e[i];
        len += strlen(kv->e[i].key) + 4 * strlen(kv->e[i].value) + 8;
    }
    qsort(order, (size_t)kv->n, sizeof *order, cmp_entry);
    char *out = petal_malloc(len), *p = out;
    for (int i = 0; i < kv->n; i++) {
        // Double-quoted YAML scalar: quotes and backslashes escaped, and control
        // characters as \xNN (a raw line break would be folded into a space
        // when read back, so the text would not read back to the same value).
        p += sprintf(p, "%s: \"", order[i]->key);
        for (const unsigned char *c = (const unsigned char *)order[i]->value; *c; c++) {
            if (*c < 0x20 || *c == 0x7f) {
                p += sprintf(p, "\\x%02x", *c);
                continue;
            }
            if (*c == '"' || *c == '\\') *p++ = '\\';
            *p++ = (char)*c;
        }
        p += sprintf(p, "\"\n");
    }
    *p = 0;
    free(order);
    return out;
}

void config_free(config_kv *kv) {
    for (int i = 0; i < kv->n; i++) free(kv->e[i].key), free(kv->e[i].value);
    free(kv->e);
    free(kv->index);
    memset(kv, 0, sizeof *kv);
}
