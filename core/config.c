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

void config_set(config_kv *kv, const char *key, const char *value, const char *src, int line,
                int col) {
    config_entry *e = NULL;
    for (int i = 0; i < kv->n; i++)
        if (!strcmp(kv->e[i].key, key)) e = &kv->e[i];
    if (!e) {
        size_t cap = (size_t)kv->cap;
        kv->e = petal_grow(kv->e, &cap, (size_t)kv->n + 1, sizeof *kv->e);
        kv->cap = (int)cap;
        e = &kv->e[kv->n++];
        e->key = dup(key);
    } else {
        free(e->value);
    }
    e->value = dup(value);
    snprintf(e->src, sizeof e->src, "%s", src);
    e->line = line;
    e->col = col;
}

const config_entry *config_find(const config_kv *kv, const char *key) {
    for (int i = 0; i < kv->n; i++)
        if (!strcmp(kv->e[i].key, key)) return &kv->e[i];
    return NULL;
}

const char *config_get(const config_kv *kv, const char *key) {
    const config_entry *e = config_find(kv, key);
    return e ? e->value : NULL;
}

void config_where(char *buf, size_t n, const config_entry *e) {
    if (e->line) snprintf(buf, n, "%s:%d:%d", e->src, e->line, e->col);
    else snprintf(buf, n, "%s", e->src);
}

int config_set_arg(config_kv *kv, const char *arg, petal_err *err) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return petal_fail(err, PETAL_EINPUT, "--set expects key=value, got '%s'", arg);
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(eq - arg), arg);
    config_set(kv, key, eq + 1, "--set", 0, 0);
    return PETAL_OK;
}

// Recursive descent over libyaml events: a mapping of scalars or mappings.
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

static int read_mapping(reader *r, config_kv *kv, const char *prefix) {
    for (;;) {
        yaml_event_t ev;
        int st = next(r, &ev);
        if (st) return st;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return PETAL_OK;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            st = petal_fail(r->err, PETAL_EINPUT, "%s:%zu:%zu: expected a key", r->path,
                            ev.start_mark.line + 1, ev.start_mark.column + 1);
            yaml_event_delete(&ev);
            return st;
        }
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "",
                 (const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if ((st = next(r, &ev))) return st;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        if (ev.type == YAML_SCALAR_EVENT) {
            config_set(kv, key, (const char *)ev.data.scalar.value, r->path, line, col);
            yaml_event_delete(&ev);
        } else if (ev.type == YAML_MAPPING_START_EVENT) {
            yaml_event_delete(&ev);
            if ((st = read_mapping(r, kv, key))) return st;
        } else {
            yaml_event_delete(&ev);
            return petal_fail(r->err, PETAL_EINPUT,
                              "%s:%d:%d: '%s' must be a single value (lists are sweep axes)",
                              r->path, line, col, key);
        }
    }
}

// Reads the document r->p is set up for.
static int read_document(reader *r, config_kv *kv) {
    const char *path = r->path;
    petal_err *err = r->err;
    yaml_event_t ev;
    int st = PETAL_OK, depth = 0;
    while (!st) {
        if ((st = next(r, &ev))) break;
        yaml_event_type_t t = ev.type;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT) break;
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT ||
            t == YAML_DOCUMENT_END_EVENT)
            continue;
        if (t == YAML_MAPPING_START_EVENT && depth == 0) {
            depth = 1;
            st = read_mapping(r, kv, "");
        } else {
            st = petal_fail(err, PETAL_EINPUT, "%s:%d:%d: expected a mapping of settings", path,
                            line, col);
        }
    }
    return st;
}

int config_read_yaml(config_kv *kv, const char *path, petal_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return petal_fail(err, PETAL_EINPUT, "%s: cannot open", path);
    reader r = {.path = path, .err = err};
    yaml_parser_initialize(&r.p);
    yaml_parser_set_input_file(&r.p, f);
    int st = read_document(&r, kv);
    yaml_parser_delete(&r.p);
    fclose(f);
    return st;
}

int config_parse_yaml(config_kv *kv, const char *text, const char *name, petal_err *err) {
    reader r = {.path = name, .err = err};
    yaml_parser_initialize(&r.p);
    yaml_parser_set_input_string(&r.p, (const unsigned char *)text, strlen(text));
    int st = read_document(&r, kv);
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
        len += strlen(kv->e[i].key) + 2 * strlen(kv->e[i].value) + 8;
    }
    qsort(order, (size_t)kv->n, sizeof *order, cmp_entry);
    char *out = petal_malloc(len), *p = out;
    for (int i = 0; i < kv->n; i++) {
        // Double-quoted YAML scalar: escape quotes and backslashes.
        p += sprintf(p, "%s: \"", order[i]->key);
        for (const char *c = order[i]->value; *c; c++) {
            if (*c == '"' || *c == '\\') *p++ = '\\';
            *p++ = *c;
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
    memset(kv, 0, sizeof *kv);
}
