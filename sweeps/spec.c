// ==== Sweep specs: YAML -> base, axes, method entries, exclude/include -> trials ===
#include "sweeps/spec.h"

#include <errno.h>
#include <gsl/gsl_qrng.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <xxhash.h>
#include <yaml.h>

#include "core/settings.h"
#include "core/trial.h"

void sweep_hash(char out[SWEEP_ID_LEN + 1], const char *text, size_t n) {
    snprintf(out, SWEEP_ID_LEN + 1, "%016llx", (unsigned long long)XXH3_64bits(text, n));
}

// ---- parsed form ------------------------------------------------------------------
enum { R_NONE = 0, R_INT, R_LOG_INT, R_NUM, R_LOG, R_CHOICE };
static const char *const range_names[] = {"", "int", "log_int", "num", "log", "choice"};

typedef struct {
    char *key;
    int line, col;     // the axis key's position
    config_entry *v;   // (n) values with their positions (R_CHOICE: the choices)
    int n;
    int range;         // R_*: sampled (needs `sample`)
    double lo, hi;
} axis;

typedef struct {
    config_kv fixed;  // method: NAME and the entry's single-valued keys
    axis *axes;
    int naxes;
    char name[64];
    int line, col;
} method_entry;

typedef struct {
    yaml_document_t doc;
    const char *name;
    petal_err *err;
    config_kv base;
    axis *axes;  // common grid axes
    int naxes;
    method_entry *entries;
    int nentries;
    config_kv *exclude;  // each: key -> value; lists expand into alternatives (see below)
    int nexclude;
    int *exclude_line, *exclude_col, *exclude_hits;  // each rule's position; trials it matched
    config_kv *include;
    int *include_line, *include_col;
    int ninclude;
    long sample_seed;
    int sobol;
} spec_ctx;

static int fail_at(spec_ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(spec_ctx *c, const yaml_node_t *n, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return petal_fail(c->err, PETAL_EINPUT, "%s:%zu:%zu: %s", c->name, n->start_mark.line + 1,
                      n->start_mark.column + 1, msg);
}

static yaml_node_t *node(spec_ctx *c, int i) { return yaml_document_get_node(&c->doc, i); }

static char *sdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = petal_malloc(n);
    memcpy(d, s, n);
    return d;
}

// A scalar's text with ${VAR} expanded from the environment (an unset one is an
// error). Free the result.
static int scalar_text(char **out, spec_ctx *c, const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE)
        return fail_at(c, n, "expected a single value here, got a %s",
                       n->type == YAML_SEQUENCE_NODE ? "list" : "mapping");
    const char *s = (const char *)n->data.scalar.value;
    size_t cap = strlen(s) + 1, len = 0;
    char *r = petal_malloc(cap);
    for (const char *p = s; *p;) {
        const char *q = p[0] == '$' && p[1] == '{' ? strchr(p, '}') : NULL;
        const char *piece = p;
        size_t plen = 1;
        if (q) {
            char var[256];
            snprintf(var, sizeof var, "%.*s", (int)(q - p - 2), p + 2);
            piece = getenv(var);
            if (!piece) {
                free(r);
                return fail_at(c, n, "${%s} is not set in the environment", var);
            }
            plen = strlen(piece);
            p = q + 1;
        } else {
            p++;
        }
        if (len + plen + 1 > cap) r = petal_grow(r, &cap, len + plen + 1, 1);
        memcpy(r + len, piece, plen);
        len += plen;
    }
    r[len] = 0;
    *out = r;
    return PETAL_OK;
}

// Checks key=value against the settings table; errors at the value's node.
static int check_value(spec_ctx *c, const char *key, const char *value, const yaml_node_t *at) {
    config_entry e = {.key = (char *)key, .value = (char *)value, .line = (int)at->start_mark.line + 1,
                      .col = (int)at->start_mark.column + 1};
    snprintf(e.src, sizeof e.src, "%s", c->name);
    setting_value v;
    const setting_def *d;
    return setting_parse(&v, &d, &e, c->err);
}

static void entry_at(config_entry *e, spec_ctx *c, const char *key, char *value, const yaml_node_t *at) {
    memset(e, 0, sizeof *e);
    e->key = sdup(key);
    e->value = value;
    snprintf(e->src, sizeof e->src, "%s", c->name);
    e->line = (int)at->start_mark.line + 1;
    e->col = (int)at->start_mark.column + 1;
}

static void set_at(config_kv *kv, spec_ctx *c, const char *key, const char *value, const yaml_node_t *at) {
    config_set(kv, key, value, c->name, (int)at->start_mark.line + 1, (int)at->start_mark.column + 1);
}

static int range_kind(spec_ctx *c, const yaml_node_t *n) {
    if (n->type != YAML_MAPPING_NODE || n->data.mapping.pairs.top - n->data.mapping.pairs.start != 1)
        return R_NONE;
    const yaml_node_t *k = node(c, n->data.mapping.pairs.start->key);
    if (k->type != YAML_SCALAR_NODE) return R_NONE;
    for (int r = R_INT; r <= R_CHOICE; r++)
        if (!strcmp((const char *)k->data.scalar.value, range_names[r])) return r;
    return R_NONE;
}

static void axis_free(axis *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i].key), free(a->v[i].value);
    free(a->v);
    free(a->key);
}

// One axis: a list of values, a single value, or a range mapping.
static int read_axis(axis *a, spec_ctx *c, const char *key, const yaml_node_t *kn, yaml_node_t *vn) {
    memset(a, 0, sizeof *a);
    a->key = sdup(key);
    a->line = (int)kn->start_mark.line + 1, a->col = (int)kn->start_mark.column + 1;
    int st, r = range_kind(c, vn);
    if (r) {  // {log_int: [a, b]} or {choice: [x, y]}
        a->range = r;
        yaml_node_t *lst = node(c, vn->data.mapping.pairs.start->value);
        if (lst->type != YAML_SEQUENCE_NODE)
            return fail_at(c, lst, "%s: %s takes a list", key, range_names[r]);
        vn = lst;
        int n = (int)(lst->data.sequence.items.top - lst->data.sequence.items.start);
        if (r != R_CHOICE && n != 2) return fail_at(c, lst, "%s: %s takes [low, high]", key, range_names[r]);
    } else if (vn->type == YAML_MAPPING_NODE) {
        return fail_at(c, vn, "%s: expected a value, a list or a range ({int|log_int|num|log|choice: [...]})", key);
    }
    int n = vn->type == YAML_SEQUENCE_NODE
                ? (int)(vn->data.sequence.items.top - vn->data.sequence.items.start) : 1;
    if (n == 0) return fail_at(c, vn, "%s: empty axis (give at least one value)", key);
    if (n > SWEEP_MAX_TRIALS)
        return fail_at(c, vn, "%s: an axis of %d values, more than the %d trials one sweep takes", key, n,
                       SWEEP_MAX_TRIALS);
    a->v = petal_calloc((size_t)n, sizeof *a->v);
    for (int i = 0; i < n; i++) {
        yaml_node_t *it = vn->type == YAML_SEQUENCE_NODE ? node(c, vn->data.sequence.items.start[i]) : vn;
        char *text;
        if ((st = scalar_text(&text, c, it))) return st;
        entry_at(&a->v[a->n++], c, key, text, it);
        if (r == R_NONE || r == R_CHOICE) {
            if ((st = check_value(c, key, text, it))) return st;
        } else if (petal_parse_double(i ? &a->hi : &a->lo, text)) {
            return fail_at(c, it, "%s: %s bounds must be numbers, got '%s'", key, range_names[r], text);
        }
    }
    if (r && r != R_CHOICE) {
        const setting_def *d = setting_find(key);
        if (!d || (d->type != SET_INT && d->type != SET_NUM))
            return fail_at(c, vn, "%s is not a number: sample it with {choice: [...]}", key);
        if ((r == R_INT || r == R_LOG_INT) && d->type != SET_INT)
            return fail_at(c, vn, "%s is not an integer: use num or log", key);
        if ((r == R_NUM || r == R_LOG) && d->type == SET_INT)
            return fail_at(c, vn, "%s is an integer: use int or log_int", key);
        if (!(a->lo <= a->hi) || ((r == R_LOG || r == R_LOG_INT) && !(a->lo > 0)))
            return fail_at(c, vn, "%s: the range [%g, %g] is empty%s", key, a->lo, a->hi,
                           r == R_LOG || r == R_LOG_INT ? " or not positive (log scale)" : "");
        char t[64];
        for (int i = 0; i < 2; i++) {  // both ends must be valid values
            snprintf(t, sizeof t, r == R_INT || r == R_LOG_INT ? "%.0f" : "%.9g", i ? a->hi : a->lo);
            if ((st = check_value(c, key, t, node(c, vn->data.sequence.items.start[i])))) return st;
        }
    }
    return PETAL_OK;
}

// The dotted key of mapping key kn under prefix ("train" + "epochs"); a key
// that is not a plain name or is too long is an error at kn.
static int join_key(char *key, size_t n, spec_ctx *c, const char *prefix, const yaml_node_t *kn) {
    if (kn->type != YAML_SCALAR_NODE) return fail_at(c, kn, "keys must be plain names");
    if ((size_t)snprintf(key, n, "%s%s%s", prefix, prefix[0] ? "." : "", kn->data.scalar.value) >= n)
        return fail_at(c, kn, "a key longer than %zu bytes", n - 1);
    return PETAL_OK;
}

// Flattens a mapping of settings (nested mappings -> dotted keys) into kv;
// scalar values only. Duplicate keys are errors.
static int read_settings(config_kv *kv, spec_ctx *c, yaml_node_t *m, const char *prefix, int depth) {
    if (m->type != YAML_MAPPING_NODE) return fail_at(c, m, "expected a mapping of settings");
    if (depth > 8) return fail_at(c, m, "settings nested deeper than 8 levels");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        char key[256];
        int kst = join_key(key, sizeof key, c, prefix, kn);
        if (kst) return kst;
        int st;
        if (range_kind(c, vn) && setting_find(key))
            return fail_at(c, vn, "%s: a range here? ranges go under grid: (with sample:)", key);
        if (vn->type == YAML_MAPPING_NODE) {
            if ((st = read_settings(kv, c, vn, key, depth + 1))) return st;
            continue;
        }
        if (config_find(kv, key)) return fail_at(c, kn, "%s is given twice", key);
        if (!setting_find(key)) return check_value(c, key, "", kn);  // unknown: named at the key, with the nearest
        if (vn->type == YAML_SEQUENCE_NODE)
            return fail_at(c, vn, "%s: a list here? axes go under grid:", key);
        char *text;
        if ((st = scalar_text(&text, c, vn))) return st;
        if (!(st = check_value(c, key, text, vn))) set_at(kv, c, key, text, vn);
        free(text);
        if (st) return st;
    }
    return PETAL_OK;
}

// Axes of a mapping (grid, or a method entry): lists, single values, ranges,
// nested mappings flattened. `method` entries are read by the caller.
static int read_axes(axis **axes, int *naxes, spec_ctx *c, yaml_node_t *m, const char *prefix,
                     int depth, config_kv *fixed) {
    if (depth > 8) return fail_at(c, m, "axes nested deeper than 8 levels");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        char key[256];
        int kst = join_key(key, sizeof key, c, prefix, kn);
        if (kst) return kst;
        if (!strcmp(key, "method")) continue;  // method entries / an entry's name: read by the caller
        int st;
        if (vn->type == YAML_MAPPING_NODE && !range_kind(c, vn)) {
            if ((st = read_axes(axes, naxes, c, vn, key, depth + 1, fixed))) return st;
            continue;
        }
        for (int i = 0; i < *naxes; i++)
            if (!strcmp((*axes)[i].key, key)) return fail_at(c, kn, "%s is given twice", key);
        if (fixed && config_find(fixed, key)) return fail_at(c, kn, "%s is given twice", key);
        if (!setting_find(key)) {
            config_entry e = {.key = key, .value = "", .line = (int)kn->start_mark.line + 1,
                              .col = (int)kn->start_mark.column + 1};
            snprintf(e.src, sizeof e.src, "%s", c->name);
            setting_value v;
            const setting_def *d;
            return setting_parse(&v, &d, &e, c->err);  // names the nearest key
        }
        size_t cap = (size_t)*naxes;
        *axes = petal_grow(*axes, &cap, (size_t)*naxes + 1, sizeof **axes);
        axis *a = &(*axes)[(*naxes)++];
        if ((st = read_axis(a, c, key, kn, vn))) return st;
        if (fixed && a->n == 1 && !a->range) {  // a single value in a method entry: fixed
            set_at(fixed, c, key, a->v[0].value, vn);
            axis_free(a);
            (*naxes)--;
        }
    }
    return PETAL_OK;
}

// The value of mapping m's `method` key in *out (NULL without one). libyaml
// keeps a key given twice: that is an error here, as for every other key.
static int method_key(yaml_node_t **out, spec_ctx *c, yaml_node_t *m) {
    *out = NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key);
        if (k->type != YAML_SCALAR_NODE || strcmp((const char *)k->data.scalar.value, "method")) continue;
        if (*out) return fail_at(c, k, "method is given twice");
        *out = node(c, p->value);
    }
    return PETAL_OK;
}

static int read_method_entries(spec_ctx *c, yaml_node_t *mn) {
    int n = mn->type == YAML_SEQUENCE_NODE ? (int)(mn->data.sequence.items.top - mn->data.sequence.items.start) : 1;
    if (n == 0) return fail_at(c, mn, "method: empty axis (give at least one method)");
    c->entries = petal_calloc((size_t)n, sizeof *c->entries);
    for (int i = 0; i < n; i++) {
        yaml_node_t *en = mn->type == YAML_SEQUENCE_NODE ? node(c, mn->data.sequence.items.start[i]) : mn;
        method_entry *me = &c->entries[c->nentries++];
        me->line = (int)en->start_mark.line + 1, me->col = (int)en->start_mark.column + 1;
        int st;
        char *name = NULL;
        if (en->type == YAML_SCALAR_NODE) {
            if ((st = scalar_text(&name, c, en))) return st;
            st = check_value(c, "method", name, en);
            if (!st) set_at(&me->fixed, c, "method", name, en);
        } else if (en->type == YAML_MAPPING_NODE) {
            yaml_node_t *nn;
            if ((st = method_key(&nn, c, en))) return st;
            if (!nn) return fail_at(c, en, "a method entry needs `method: NAME`");
            if ((st = scalar_text(&name, c, nn))) return st;
            st = check_value(c, "method", name, nn);
            if (!st) set_at(&me->fixed, c, "method", name, nn);
            if (!st) st = read_axes(&me->axes, &me->naxes, c, en, "", 0, &me->fixed);
            // the entry's own `method` key went into fixed through read_axes too
        } else {
            return fail_at(c, en, "a method entry is a name or a mapping with method: NAME");
        }
        snprintf(me->name, sizeof me->name, "%s", name ? name : "");
        free(name);
        if (st) return st;
        for (int a = 0; a < me->naxes; a++)
            for (int b = 0; b < c->naxes; b++)
                if (!strcmp(me->axes[a].key, c->axes[b].key))
                    return petal_fail(c->err, PETAL_EINPUT, "%s:%d:%d: %s is already a grid axis (line %d)",
                                      c->name, me->axes[a].line, me->axes[a].col, me->axes[a].key,
                                      c->axes[b].line);
    }
    return PETAL_OK;
}

// exclude / include: a list of mappings of settings (lists allowed in exclude:
// any of the values matches).
static int read_rules(config_kv **rules, int **lines, int **cols, int *nrules, spec_ctx *c, yaml_node_t *ln,
                      int lists) {
    if (ln->type != YAML_SEQUENCE_NODE) return fail_at(c, ln, "expected a list of mappings");
    int n = (int)(ln->data.sequence.items.top - ln->data.sequence.items.start);
    *rules = petal_calloc((size_t)(n ? n : 1), sizeof **rules);
    *lines = petal_calloc((size_t)(n ? n : 1), sizeof **lines);
    *cols = petal_calloc((size_t)(n ? n : 1), sizeof **cols);
    for (int i = 0; i < n; i++) {
        yaml_node_t *m = node(c, ln->data.sequence.items.start[i]);
        (*nrules)++;
        (*lines)[i] = (int)m->start_mark.line + 1, (*cols)[i] = (int)m->start_mark.column + 1;
        if (m->type != YAML_MAPPING_NODE) return fail_at(c, m, "expected a mapping of settings");
        if (!lists) {
            int st = read_settings(&(*rules)[i], c, m, "", 0);
            if (st) return st;
            continue;
        }
        // exclude: values may be lists; stored as "v1\x1fv2" alternatives
        axis *ax = NULL;
        int nax = 0, st = read_axes(&ax, &nax, c, m, "", 0, NULL);
        for (int a = 0; !st && a < nax; a++) {
            if (ax[a].range) {
                st = petal_fail(c->err, PETAL_EINPUT, "%s:%d:%d: exclude takes values, not ranges",
                                c->name, ax[a].line, ax[a].col);
                break;
            }
            size_t len = 1;
            for (int v = 0; v < ax[a].n; v++) len += strlen(ax[a].v[v].value) + 1;
            char *alt = petal_malloc(len), *p = alt;
            for (int v = 0; v < ax[a].n; v++) p += sprintf(p, "%s%s", v ? "\x1f" : "", ax[a].v[v].value);
            config_set(&(*rules)[i], ax[a].key, alt, c->name, ax[a].line, ax[a].col);
            free(alt);
        }
        // a `method` key in an exclude rule is a plain setting here
        yaml_node_t *mv = NULL;
        if (!st) st = method_key(&mv, c, m);
        if (!st && mv) {
            char *text;
            if (!(st = scalar_text(&text, c, mv))) {
                if (!(st = check_value(c, "method", text, mv))) set_at(&(*rules)[i], c, "method", text, mv);
                free(text);
            }
        }
        for (int a = 0; a < nax; a++) axis_free(&ax[a]);
        free(ax);
        if (st) return st;
    }
    return PETAL_OK;
}

static int read_int_field(long *out, spec_ctx *c, yaml_node_t *v, const char *what, long lo, long hi) {
    char *text;
    int st = scalar_text(&text, c, v);
    if (st) return st;
    if (petal_parse_long(out, text, lo, hi))
        st = fail_at(c, v, "%s expects an integer in [%ld, %ld], got '%s'", what, lo, hi, text);
    free(text);
    return st;
}

static int read_sample(sweep_spec *s, spec_ctx *c, yaml_node_t *m) {
    if (m->type != YAML_MAPPING_NODE) return fail_at(c, m, "sample: expected {n: N, seed: S, kind: random|sobol}");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        long x;
        int st = PETAL_OK;
        if (!strcmp(key, "n")) {
            if (!(st = read_int_field(&x, c, v, "sample.n", 1, SWEEP_MAX_TRIALS))) s->sample_n = (int)x;
        } else if (!strcmp(key, "seed")) {
            st = read_int_field(&c->sample_seed, c, v, "sample.seed", 0, 0x7fffffff);
        } else if (!strcmp(key, "kind")) {
            char *t;
            if ((st = scalar_text(&t, c, v))) return st;
            if (!strcmp(t, "random")) c->sobol = 0;
            else if (!strcmp(t, "sobol")) c->sobol = 1;
            else st = fail_at(c, v, "sample.kind expects random or sobol, got '%s'", t);
            free(t);
        } else {
            st = fail_at(c, k, "unknown sample setting '%s' (n, seed, kind)", key);
        }
        if (st) return st;
    }
    if (!s->sample_n) return fail_at(c, m, "sample needs n (points per method entry)");
    return PETAL_OK;
}

static int read_early_stop(sweep_spec *s, spec_ctx *c, yaml_node_t *m) {
    if (m->type != YAML_MAPPING_NODE)
        return fail_at(c, m, "early_stop: expected {kind: asha|median, metric: valid_acc, min_epochs: N, eta: N}");
    s->early = (early_stop){EARLY_ASHA, 1, 3};
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        long x;
        int st = PETAL_OK;
        char *t = NULL;
        if (!strcmp(key, "kind") || !strcmp(key, "metric")) {
            if ((st = scalar_text(&t, c, v))) return st;
            if (!strcmp(key, "kind") && !strcmp(t, "asha")) s->early.kind = EARLY_ASHA;
            else if (!strcmp(key, "kind") && !strcmp(t, "median")) s->early.kind = EARLY_MEDIAN;
            else if (!strcmp(key, "kind")) st = fail_at(c, v, "early_stop.kind expects asha or median, got '%s'", t);
            else if (strcmp(t, "valid_acc")) st = fail_at(c, v, "early_stop.metric expects valid_acc, got '%s'", t);
            free(t);
        } else if (!strcmp(key, "min_epochs")) {
            if (!(st = read_int_field(&x, c, v, "early_stop.min_epochs", 1, 100000))) s->early.min_epochs = (int)x;
        } else if (!strcmp(key, "eta")) {
            if (!(st = read_int_field(&x, c, v, "early_stop.eta", 2, 100))) s->early.eta = (int)x;
        } else {
            st = fail_at(c, k, "unknown early_stop setting '%s' (kind, metric, min_epochs, eta)", key);
        }
        if (st) return st;
    }
    return PETAL_OK;
}

// ---- expansion -------------------------------------------------------------------
typedef struct {
    sweep_spec *s;
    spec_ctx *c;
    uint64_t *ids;  // open-addressing set of trial ids -> index + 1
    int *slot;
    size_t cap;
    size_t tcap;  // of s->trials
} expander;

// True when some exclude rule matches kv (every rule that does counts a hit:
// a rule that matches no trial is reported, it is likely a typo).
static int excluded(spec_ctx *c, const config_kv *kv) {
    char b1[64], b2[64];
    int out = 0;
    for (int r = 0; r < c->nexclude; r++) {
        const config_kv *rule = &c->exclude[r];
        int all = rule->n > 0;
        for (int i = 0; i < rule->n && all; i++) {
            const char *have = config_get(kv, rule->e[i].key);
            if (!have) { all = 0; break; }
            const char *h = setting_normalize(b1, sizeof b1, rule->e[i].key, have);
            int any = 0;
            for (const char *p = rule->e[i].value; !any;) {  // alternatives split by \x1f
                const char *q = strchr(p, '\x1f');
                char alt[512];
                snprintf(alt, sizeof alt, "%.*s", (int)(q ? q - p : (long)strlen(p)), p);
                any = !strcmp(h, setting_normalize(b2, sizeof b2, rule->e[i].key, alt));
                if (!q) break;
                p = q + 1;
            }
            all = any;
        }
        if (all) c->exclude_hits[r]++, out = 1;
    }
    return out;
}

// Adds one trial: validates it as `petal train` would, computes its id, and
// refuses a second trial with the same settings.
static int add_trial(expander *x, config_kv *kv, const char *origin, int line, int col) {
    spec_ctx *c = x->c;
    sweep_spec *s = x->s;
    trial_settings ts;
    int st = trial_settings_resolve(&ts, kv, c->err);
    if (!st) {  // method sizes that need the model (rank vs hidden size) are the trial's to check
        ast_method m = ts.method;
        ast_config cfg;
        if (!ts.backbone[0] && !ast_config_preset(&cfg, ts.size, ts.frames, 2, NULL))
            st = ast_method_resolve(&m, cfg.C, cfg.L, c->err);
        if (st) {
            char msg[sizeof c->err->msg];
            snprintf(msg, sizeof msg, "%s", c->err->msg);
            st = petal_fail(c->err, st, "%s:%d:%d: %s", c->name, line, col, msg);
        }
    }
    if (st) {
        config_free(kv);
        return st;
    }
    sweep_trial t = {.kv = *kv, .identity = trial_identity(kv, 0), .origin = sdup(origin)};
    sweep_hash(t.id, t.identity, strlen(t.identity));
    uint64_t h = XXH3_64bits(t.identity, strlen(t.identity));
    if ((size_t)(s->n + 1) * 2 > x->cap) {  // grow and rehash
        size_t cap = x->cap ? x->cap * 2 : 1024;
        uint64_t *ids = petal_calloc(cap, sizeof *ids);
        int *slot = petal_calloc(cap, sizeof *slot);
        for (size_t i = 0; i < x->cap; i++) {
            if (!x->slot[i]) continue;
            size_t j = x->ids[i] & (cap - 1);
            while (slot[j]) j = (j + 1) & (cap - 1);
            ids[j] = x->ids[i], slot[j] = x->slot[i];
        }
        free(x->ids), free(x->slot);
        x->ids = ids, x->slot = slot, x->cap = cap;
    }
    size_t j = h & (x->cap - 1);
    for (; x->slot[j]; j = (j + 1) & (x->cap - 1)) {
        if (x->ids[j] != h) continue;
        const sweep_trial *o = &s->trials[x->slot[j] - 1];
        // Written differently, the same settings: a value spelled two ways
        // (0.001 and 1e-3) or a default given explicitly. Name it, where it is.
        const config_entry *why = NULL, *was = NULL;
        for (int i = 0; i < kv->n && !why; i++) {
            const config_entry *e = config_find(&o->kv, kv->e[i].key);
            if (!e || strcmp(e->value, kv->e[i].value)) why = &kv->e[i], was = e;
        }
        for (int i = 0; i < o->kv.n && !why; i++)
            if (!config_find(kv, o->kv.e[i].key)) why = &o->kv.e[i];
        char same[700] = "";
        if (why && was)
            snprintf(same, sizeof same, "%s %.200s is the same value as %.200s (line %d): ", why->key, why->value,
                     was->value, was->line);
        else if (why)
            snprintf(same, sizeof same, "%s %.200s is the default: ", why->key, why->value);
        if (why && why->line) line = why->line, col = why->col;
        st = petal_fail(c->err, PETAL_EINPUT,
                        "%s:%d:%d: %sthis trial (%s) comes out twice: %s gives the same settings (id %s)",
                        c->name, line, col, same, origin, o->origin, o->id);
        free(t.identity), free(t.origin);
        config_free(kv);
        return st;
    }
    x->ids[j] = h, x->slot[j] = s->n + 1;
    s->trials = petal_grow(s->trials, &x->tcap, (size_t)s->n + 1, sizeof *s->trials);
    s->trials[s->n++] = t;
    return PETAL_OK;
}

// Value of range axis a at u in [0, 1).
static void range_value(char *out, size_t n, const axis *a, double u) {
    double lo = a->lo, hi = a->hi, x;
    switch (a->range) {
    case R_INT: snprintf(out, n, "%.0f", floor(lo + u * (hi - lo + 1))); return;
    case R_LOG_INT:
        x = exp(log(lo) + u * (log(hi + 1) - log(lo)));
        snprintf(out, n, "%.0f", fmin(floor(x), hi));
        return;
    case R_NUM:
    case R_LOG:  // 4 significant digits, unless that rounds out of [lo, hi]
        x = a->range == R_NUM ? lo + u * (hi - lo) : exp(log(lo) + u * (log(hi) - log(lo)));
        x = fmin(fmax(x, lo), hi);
        snprintf(out, n, "%.4g", x);
        double back = strtod(out, NULL);
        if (back < lo || back > hi) snprintf(out, n, "%.17g", x);
        return;
    case R_CHOICE: snprintf(out, n, "%s", a->v[(int)fmin(floor(u * a->n), a->n - 1)].value); return;
    }
}

// Every trial of one method entry (me NULL: the grid without a method axis).
static int expand_entry(expander *x, const method_entry *me) {
    spec_ctx *c = x->c;
    int nax = c->naxes + (me ? me->naxes : 0);
    const axis **ax = petal_malloc(sizeof *ax * (size_t)(nax ? nax : 1));
    int nlist = 0, nrange = 0;
    for (int i = 0; i < nax; i++) {  // list axes first, then ranges (sampled per point)
        const axis *a = i < c->naxes ? &c->axes[i] : &me->axes[i - c->naxes];
        if (!a->range) ax[nlist++] = a;
    }
    for (int i = 0; i < nax; i++) {
        const axis *a = i < c->naxes ? &c->axes[i] : &me->axes[i - c->naxes];
        if (a->range) ax[nlist + nrange++] = a;
    }
    int st = PETAL_OK;
    if (nrange && !x->s->sample_n) {
        st = petal_fail(c->err, PETAL_EINPUT, "%s:%d:%d: %s is a range: add `sample: {n: N}` to draw from it",
                        c->name, ax[nlist]->line, ax[nlist]->col, ax[nlist]->key);
        free(ax);
        return st;
    }
    // Points are drawn one after another until n distinct ones are kept (ranges
    // holding fewer than n value combinations give all they have: the draws stop
    // after 100 n + 1000). Point p depends on (seed, the entry's method, p) only,
    // and a duplicate is skipped in every spec alike: growing n keeps the earlier
    // points, other entries do not move them.
    int points = x->s->sample_n ? x->s->sample_n : 1, kept = 0;
    long max_draws = nrange ? 100L * points + 1000 : 1;
    double *u = petal_calloc((size_t)(nrange ? nrange : 1), sizeof *u);
    double *shift = petal_calloc((size_t)(nrange ? nrange : 1), sizeof *shift);
    char *vals = petal_calloc((size_t)(nrange ? nrange : 1), 512);
    gsl_qrng *q = NULL;
    char tag[160];
    if (nrange && c->sobol) {
        if (nrange > 40) {
            st = petal_fail(c->err, PETAL_EINPUT, "%s:%d:%d: Sobol sampling takes at most 40 ranges per method entry",
                            c->name, ax[nlist]->line, ax[nlist]->col);
        } else if (!(q = gsl_qrng_alloc(gsl_qrng_sobol, (unsigned)nrange))) {
            st = petal_fail(c->err, PETAL_EFAIL, "GSL: cannot allocate a Sobol generator");
        }
        // seed > 0: a random shift of the whole sequence modulo 1 (Cranley-Patterson)
        snprintf(tag, sizeof tag, "sobol/%ld/%s", c->sample_seed, me ? me->name : "");
        petal_rng r;
        petal_rng_seed(&r, XXH3_64bits(tag, strlen(tag)));
        for (int k = 0; k < nrange; k++) shift[k] = c->sample_seed ? petal_rng_uniform(&r) : 0.0;
    }
    size_t hcap = 64;  // open-addressing set of the kept points' value hashes (0: empty)
    while (hcap < 4 * (size_t)points) hcap *= 2;
    uint64_t *seen = petal_calloc(nrange ? hcap : 1, sizeof *seen);
    int *idx = petal_calloc((size_t)(nlist ? nlist : 1), sizeof *idx);
    // The distinct value combinations the ranges hold (num and log: unbounded).
    // Once every one is kept, further draws can only repeat them: stopping
    // then keeps exactly the points the 100 n + 1000 draws would, without
    // drawing millions more (sample.n 100000 over {int: [1, 2]}).
    double combos = 1;
    for (int k = 0; k < nrange; k++) {
        const axis *a = ax[nlist + k];
        if (a->range == R_INT || a->range == R_LOG_INT) {
            combos *= a->hi - a->lo + 1;
        } else if (a->range == R_CHOICE && a->n <= 1000) {
            int distinct = 0;
            for (int i = 0; i < a->n; i++) {
                int j = 0;
                while (j < i && strcmp(a->v[j].value, a->v[i].value)) j++;
                distinct += j == i;
            }
            combos *= distinct;
        } else {
            combos = INFINITY;
        }
    }
    for (long p = 0; !st && kept < points && p < max_draws && kept < combos; p++) {
        if (q) {
            gsl_qrng_get(q, u);
            for (int k = 0; k < nrange; k++) u[k] = fmod(u[k] + shift[k], 1.0);
        } else if (nrange) {
            snprintf(tag, sizeof tag, "%ld/%s/%ld", c->sample_seed, me ? me->name : "", p);
            petal_rng r;
            petal_rng_seed(&r, XXH3_64bits(tag, strlen(tag)));
            for (int k = 0; k < nrange; k++) u[k] = petal_rng_uniform(&r);
        }
        uint64_t h = 0;
        for (int k = 0; k < nrange; k++) {
            range_value(vals + 512 * k, 512, ax[nlist + k], u[k]);
            h = XXH3_64bits_withSeed(vals + 512 * k, strlen(vals + 512 * k), h);
        }
        if (nrange) {
            h |= 1;  // never 0 (the empty mark)
            size_t j = h & (hcap - 1);
            while (seen[j] && seen[j] != h) j = (j + 1) & (hcap - 1);
            if (seen[j]) continue;  // these values came out before: draw again
            seen[j] = h;
        }
        int point = kept++;
        memset(idx, 0, sizeof *idx * (size_t)(nlist ? nlist : 1));
        for (int done = 0; !done && !st;) {
            config_kv kv = {0};
            for (int i = 0; i < c->base.n; i++) {
                const config_entry *e = &c->base.e[i];
                config_set(&kv, e->key, e->value, e->src, e->line, e->col);
            }
            if (me)
                for (int i = 0; i < me->fixed.n; i++) {
                    const config_entry *e = &me->fixed.e[i];
                    config_set(&kv, e->key, e->value, e->src, e->line, e->col);
                }
            for (int i = 0; i < nlist; i++) {
                const config_entry *e = &ax[i]->v[idx[i]];
                config_set(&kv, e->key, e->value, e->src, e->line, e->col);
            }
            for (int k = 0; k < nrange; k++)
                config_set(&kv, ax[nlist + k]->key, vals + 512 * k, c->name, ax[nlist + k]->line, ax[nlist + k]->col);
            char origin[160];
            if (nrange) snprintf(origin, sizeof origin, "sample %d of %s", point, me ? me->name : "the grid");
            else snprintf(origin, sizeof origin, "the grid%s%s", me ? " entry " : "", me ? me->name : "");
            if (excluded(c, &kv)) config_free(&kv);
            else st = add_trial(x, &kv, origin, me ? me->line : 1, me ? me->col : 1);
            // next combination (mixed radix, last axis fastest)
            int i = nlist - 1;
            for (; i >= 0; i--) {
                if (++idx[i] < ax[i]->n) break;
                idx[i] = 0;
            }
            done = i < 0;
        }
    }
    if (q) gsl_qrng_free(q);
    free(idx), free(u), free(shift), free(vals), free(seen), free(ax);
    return st;
}

// The number of trials the spec can expand to (list axes multiplied, times the
// sample points of entries with ranges, plus the includes), known before any
// trial is built: a grid past SWEEP_MAX_TRIALS is refused here, in
// microseconds, instead of after filling the memory (10 million trials would
// need some 40 GB of settings).
static int check_size(spec_ctx *c, const yaml_node_t *grid_key, int sample_n) {
    double total = c->ninclude, common = 1;
    int common_ranges = 0;
    for (int i = 0; i < c->naxes; i++) {
        if (c->axes[i].range) common_ranges = 1;
        else common *= c->axes[i].n;
    }
    for (int e = 0; grid_key && e < (c->nentries ? c->nentries : 1); e++) {
        const method_entry *me = c->nentries ? &c->entries[e] : NULL;
        double n = common;
        int ranges = common_ranges;
        for (int i = 0; me && i < me->naxes; i++) {
            if (me->axes[i].range) ranges = 1;
            else n *= me->axes[i].n;
        }
        total += ranges && sample_n ? n * sample_n : n;
    }
    if (total <= SWEEP_MAX_TRIALS) return PETAL_OK;
    // which axes make it so big: the common ones with their lengths
    char why[400] = "";
    size_t o = 0;
    for (int i = 0; i < c->naxes && o < sizeof why; i++)
        if (!c->axes[i].range)
            o += (size_t)snprintf(why + o, sizeof why - o, "%s%s %d", o ? " x " : "", c->axes[i].key, c->axes[i].n);
    if (o < sizeof why && c->nentries)
        o += (size_t)snprintf(why + o, sizeof why - o, "%s%d method entries with their own axes", o ? " x " : "",
                              c->nentries);
    if (o < sizeof why && sample_n)
        snprintf(why + o, sizeof why - o, "%ssample.n %d", o ? ", " : "", sample_n);
    char count[64];  // 100,000,000; past 10^15 in e-notation
    if (total < 1e15) {
        char digits[32];
        int nd = snprintf(digits, sizeof digits, "%.0f", total), k = 0;
        for (int i = 0; i < nd; i++) {
            if (i && (nd - i) % 3 == 0) count[k++] = ',';
            count[k++] = digits[i];
        }
        count[k] = 0;
    } else {
        snprintf(count, sizeof count, "%.3g", total);
    }
    const char *what = grid_key ? "the grid" : "include";
    char at[300];
    if (grid_key)
        snprintf(at, sizeof at, "%s:%zu:%zu", c->name, grid_key->start_mark.line + 1, grid_key->start_mark.column + 1);
    else
        snprintf(at, sizeof at, "%s", c->name);
    return petal_fail(c->err, PETAL_EINPUT,
                      "%s: %s expands to %s trials (%s), more than the %d one sweep takes: shorten the axes, "
                      "or draw points from ranges (sample: {n: N})",
                      at, what, count, why, SWEEP_MAX_TRIALS);
}

static void find_varying(sweep_spec *s) {
    char b1[64], b2[64];
    s->varying = petal_calloc(SK_COUNT, sizeof *s->varying);
    for (int k = 0; k < SK_COUNT; k++) {
        const char *key = settings_table[k].key, *first = NULL;
        int differ = 0;
        if (settings_table[k].flags & SETTING_NOT_IDENTITY) continue;
        for (int t = 0; t < s->n && !differ; t++) {
            const char *v = config_get(&s->trials[t].kv, key);
            v = v ? setting_normalize(b1, sizeof b1, key, v) : "";
            if (!t) {  // a normalized number lives in b1, reused below; text stays in the trial
                first = v == b1 ? strcpy(b2, v) : v;
                continue;
            }
            differ = strcmp(first, v) != 0;
        }
        if (differ) s->varying[s->nvarying++] = key;
    }
}

static void ctx_free(spec_ctx *c) {
    config_free(&c->base);
    for (int i = 0; i < c->naxes; i++) axis_free(&c->axes[i]);
    free(c->axes);
    for (int e = 0; e < c->nentries; e++) {
        config_free(&c->entries[e].fixed);
        for (int i = 0; i < c->entries[e].naxes; i++) axis_free(&c->entries[e].axes[i]);
        free(c->entries[e].axes);
    }
    free(c->entries);
    for (int i = 0; i < c->nexclude; i++) config_free(&c->exclude[i]);
    for (int i = 0; i < c->ninclude; i++) config_free(&c->include[i]);
    free(c->exclude), free(c->include), free(c->include_line), free(c->include_col);
    free(c->exclude_line), free(c->exclude_col), free(c->exclude_hits);
    yaml_document_delete(&c->doc);
}

static const char *const top_keys[] = {"study", "description", "base", "grid", "exclude", "include",
                                       "sample", "early_stop"};

int sweep_spec_parse(sweep_spec *s, const char *text, const char *name, petal_err *err) {
    memset(s, 0, sizeof *s);
    s->path = sdup(name);
    s->text = sdup(text);
    sweep_hash(s->hash, text, strlen(text));
    spec_ctx c = {.name = name, .err = err};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        sweep_spec_free(s);
        return petal_fail(err, PETAL_EFAIL, "libyaml: out of memory");
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    int st = PETAL_OK;
    if (!yaml_parser_load(&p, &c.doc)) {
        st = petal_fail(err, PETAL_EINPUT, "%s:%zu:%zu: %s%s%s", name, p.problem_mark.line + 1,
                        p.problem_mark.column + 1, p.problem ? p.problem : "malformed YAML",
                        p.context ? " " : "", p.context ? p.context : "");
        yaml_parser_delete(&p);
        sweep_spec_free(s);
        return st;
    }
    // One document per spec: a second one (after ---) would be ignored silently.
    yaml_document_t more;
    if (!yaml_parser_load(&p, &more)) {
        st = petal_fail(err, PETAL_EINPUT, "%s:%zu:%zu: %s%s%s", name, p.problem_mark.line + 1,
                        p.problem_mark.column + 1, p.problem ? p.problem : "malformed YAML",
                        p.context ? " " : "", p.context ? p.context : "");
    } else {
        if (yaml_document_get_root_node(&more))
            st = petal_fail(err, PETAL_EINPUT, "%s:%zu:%zu: a second YAML document: a spec is one document",
                            name, more.start_mark.line + 1, more.start_mark.column + 1);
        yaml_document_delete(&more);
    }
    yaml_parser_delete(&p);
    if (st) {
        yaml_document_delete(&c.doc);
        sweep_spec_free(s);
        return st;
    }
    yaml_node_t *root = yaml_document_get_root_node(&c.doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        st = petal_fail(err, PETAL_EINPUT, "%s:1:1: a sweep spec is a mapping (study, base, grid, ...)%s",
                        name, root ? "" : "; the file is empty");
        yaml_document_delete(&c.doc);
        sweep_spec_free(s);
        return st;
    }
    snprintf(s->study, sizeof s->study, "%s", strrchr(name, '/') ? strrchr(name, '/') + 1 : name);
    char *dot = strrchr(s->study, '.');
    if (dot) *dot = 0;
    yaml_node_t *grid = NULL, *grid_key = NULL;
    for (yaml_node_pair_t *q = root->data.mapping.pairs.start; !st && q < root->data.mapping.pairs.top; q++) {
        yaml_node_t *kn = node(&c, q->key), *vn = node(&c, q->value);
        const char *key = kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
        for (yaml_node_pair_t *r = root->data.mapping.pairs.start; r < q; r++) {
            yaml_node_t *k2 = node(&c, r->key);
            if (k2->type == YAML_SCALAR_NODE && !strcmp((const char *)k2->data.scalar.value, key))
                st = fail_at(&c, kn, "%s is given twice", key);
        }
        if (st) break;
        char *t = NULL;
        if (!strcmp(key, "study")) {
            if (!(st = scalar_text(&t, &c, vn))) snprintf(s->study, sizeof s->study, "%s", t);
            free(t);
        } else if (!strcmp(key, "description")) {
            if (!(st = scalar_text(&t, &c, vn))) free(t);
        } else if (!strcmp(key, "base")) {
            st = read_settings(&c.base, &c, vn, "", 0);
        } else if (!strcmp(key, "grid")) {
            if (vn->type != YAML_MAPPING_NODE) st = fail_at(&c, vn, "grid: expected a mapping of axes");
            else grid = vn, grid_key = kn;
        } else if (!strcmp(key, "exclude")) {
            st = read_rules(&c.exclude, &c.exclude_line, &c.exclude_col, &c.nexclude, &c, vn, 1);
        } else if (!strcmp(key, "include")) {
            st = read_rules(&c.include, &c.include_line, &c.include_col, &c.ninclude, &c, vn, 0);
        } else if (!strcmp(key, "sample")) {
            st = read_sample(s, &c, vn);
        } else if (!strcmp(key, "early_stop")) {
            st = read_early_stop(s, &c, vn);
        } else {
            const char *near = NULL;
            for (size_t i = 0; i < sizeof top_keys / sizeof top_keys[0]; i++)
                if (setting_distance(key, top_keys[i]) <= 2) near = top_keys[i];
            st = fail_at(&c, kn, "unknown section '%s'%s%s%s (study, description, base, grid, exclude, include, sample, early_stop)%s",
                         key, near ? " (did you mean " : "", near ? near : "", near ? "?)" : "",
                         setting_find(key) ? "; settings go under base: or grid:" : "");
        }
    }
    if (!st && grid) {
        st = read_axes(&c.axes, &c.naxes, &c, grid, "", 0, NULL);
        yaml_node_t *methods = NULL;
        if (!st) st = method_key(&methods, &c, grid);
        if (!st && methods) st = read_method_entries(&c, methods);
    }
    for (int i = 0; !st && i < c.naxes; i++)
        if (config_find(&c.base, c.axes[i].key))
            st = petal_fail(err, PETAL_EINPUT, "%s:%d:%d: %s is both in base and a grid axis", name,
                            c.axes[i].line, c.axes[i].col, c.axes[i].key);
    if (!st) st = check_size(&c, grid_key, s->sample_n);
    c.exclude_hits = petal_calloc((size_t)(c.nexclude ? c.nexclude : 1), sizeof *c.exclude_hits);
    expander x = {.s = s, .c = &c};
    if (!st && !grid && !c.ninclude)
        st = petal_fail(err, PETAL_EINPUT, "%s: no trials: give a grid: or an include: list", name);
    if (!st && grid) {
        if (c.nentries)
            for (int e = 0; e < c.nentries && !st; e++) st = expand_entry(&x, &c.entries[e]);
        else
            st = expand_entry(&x, NULL);
    }
    for (int i = 0; !st && i < c.ninclude; i++) {
        config_kv kv = {0};
        for (int j = 0; j < c.base.n; j++) {
            const config_entry *e = &c.base.e[j];
            config_set(&kv, e->key, e->value, e->src, e->line, e->col);
        }
        for (int j = 0; j < c.include[i].n; j++) {
            const config_entry *e = &c.include[i].e[j];
            config_set(&kv, e->key, e->value, e->src, e->line, e->col);
        }
        char origin[32];
        snprintf(origin, sizeof origin, "include[%d]", i);
        st = add_trial(&x, &kv, origin, c.include_line[i], c.include_col[i]);
    }
    for (int r = 0; !st && r < c.nexclude; r++)
        if (!c.exclude_hits[r])
            st = petal_fail(err, PETAL_EINPUT, "%s:%d:%d: exclude[%d] matches no trial of the grid (a value or a "
                            "combination the axes do not have?)", name, c.exclude_line[r], c.exclude_col[r], r);
    if (!st && s->n == 0) st = petal_fail(err, PETAL_EINPUT, "%s: every trial is excluded", name);
    free(x.ids), free(x.slot);
    ctx_free(&c);
    if (!st) find_varying(s);
    if (st) {
        sweep_spec_free(s);
        return st;
    }
    return PETAL_OK;
}

int sweep_spec_load(sweep_spec *s, const char *path, petal_err *err) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) return petal_fail(err, PETAL_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = petal_malloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) buf = petal_grow(buf, &cap, cap * 2, 1);
        if (n > (64u << 20)) break;
    }
    int bad = ferror(f);
    fclose(f);
    buf[n] = 0;
    int st;
    if (bad) st = petal_fail(err, PETAL_EINPUT, "%s: read error", path);
    else if (n > (64u << 20)) st = petal_fail(err, PETAL_EINPUT, "%s: larger than 64 MiB", path);
    else if (strlen(buf) != n) st = petal_fail(err, PETAL_EINPUT, "%s: contains a NUL byte (not a YAML text)", path);
    else st = sweep_spec_parse(s, buf, path, err);
    free(buf);
    return st;
}

void sweep_spec_free(sweep_spec *s) {
    for (int i = 0; i < s->n; i++) {
        config_free(&s->trials[i].kv);
        free(s->trials[i].identity), free(s->trials[i].origin);
    }
    free(s->trials), free(s->varying), free(s->path), free(s->text);
    memset(s, 0, sizeof *s);
}

int sweep_in_shard(const char *id, int k, int nshards) {
    unsigned long long h = strtoull(id, NULL, 16);
    return nshards <= 1 || (int)(h % (unsigned long long)nshards) == k;
}
