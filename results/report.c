// ==== Reports: trials grouped into tables, written as Markdown, CSV, LaTeX, HTML ====
#include "results/report.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "core/trial.h"
#include "core/version.h"

const char *const report_kind_names[] = {"main", "fewshot", "scaling", "ablation", NULL};
const char *const report_metric_names[] = {"test_acc", "best_valid_acc", "seconds", "peak_rss_mib", NULL};
const char *const report_format_names[] = {"md", "csv", "tex", "html", NULL};

static int find_name(const char *const *names, const char *name) {
    for (int i = 0; name && names[i]; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}
int report_kind_parse(const char *name) { return find_name(report_kind_names, name); }
int report_metric_parse(const char *name) { return find_name(report_metric_names, name); }
int report_format_parse(const char *name) { return find_name(report_format_names, name); }

// What a metric is called in titles and on axes (with its unit), its digits,
// and which way is better.
static const struct {
    const char *title, *axis;
    int digits, higher_better;
} metric_info[] = {
    [METRIC_TEST_ACC] = {"Test accuracy (%)", "test accuracy (%)", 1, 1},
    [METRIC_BEST_VALID_ACC] = {"Best validation accuracy (%)", "best validation accuracy (%)", 1, 1},
    [METRIC_SECONDS] = {"Seconds per trial", "time per trial (s)", 1, 0},
    [METRIC_PEAK_RSS] = {"Peak RSS (MiB)", "peak resident memory (MiB)", 0, 0},
};

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = petal_malloc(n);
    memcpy(d, s, n);
    return d;
}

// ---- one trial of the store, parsed once ---------------------------------------------
typedef struct {
    const results_row *r;
    config_kv kv;
    trial_settings ts;
    int resolved;          // ts holds the trial's settings
    char method_id[512];   // the method and its settings: "method=lora lora.rank=8"
    char label[160];       // the label of its method (the records', shared by method_id)
    double label_order;    // preset index * 1e13 + smallest trainable count of method_id
    int done, failed;
} trial_info;

static const char *status_word(const results_row *r) { return r->status; }

static void method_identity(char *out, size_t n, const config_kv *kv) {
    size_t o = 0;
    out[0] = 0;
    // config_kv keeps keys in first-set order; the identity text is sorted, so walk the table
    for (int k = 0; k < SK_COUNT; k++) {
        const setting_def *d = &settings_table[k];
        if (!(d->flags & SETTING_METHOD) && d->id != SK_METHOD && d->id != SK_BASE) continue;
        const char *v = config_get(kv, d->key);
        if (!v) continue;
        char buf[128];
        const char *nv = setting_normalize(buf, sizeof buf, d->key, v);
        o += (size_t)snprintf(out + o, o < n ? n - o : 0, "%s%s=%s", o ? " " : "", d->key, nv);
    }
    if (!o) snprintf(out, n, "method=linear");
}

static int choice_index(const char *choices, const char *v) {
    size_t lv = strlen(v);
    int i = 0;
    for (const char *p = choices; p && *p; i++) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == lv && !strncmp(p, v, l)) return i;
        p = e ? e + 1 : p + l;
    }
    return -1;
}

// ---- the value of a grouping key for one trial -----------------------------------------
// Keys: settings-table keys, "label", "dataset", and the ablation's derived
// keys ("~adapter.site", "~adapter.form", "~lora.targets", "~lora.rank").
typedef struct {
    char key[512];   // what groups (distinct keys = distinct groups)
    char text[512];  // what is shown
    double num;      // order (NaN: by text)
} key_value;

static void value_of(key_value *v, const char *name, const trial_info *ti) {
    v->num = NAN;
    const ast_method *m = &ti->ts.method;
    if (!strcmp(name, "label")) {
        snprintf(v->key, sizeof v->key, "%s", ti->method_id);
        snprintf(v->text, sizeof v->text, "%s", ti->label);
        v->num = ti->label_order;
    } else if (!strcmp(name, "dataset")) {
        const char *layout = config_get(&ti->kv, "dataset.layout");
        const char *root = config_get(&ti->kv, "dataset.root");
        if (!layout) layout = setting_find("dataset.layout")->dflt;
        snprintf(v->key, sizeof v->key, "%s\x1f%s", layout, root ? root : "");
        snprintf(v->text, sizeof v->text, "%s", layout);
        v->num = choice_index(setting_find("dataset.layout")->choices, layout);
    } else if (!strcmp(name, "~adapter.site")) {
        int s = ti->resolved ? m->adapter.at_mhsa + 2 * m->adapter.at_ffn : 0;
        static const char *const sites[] = {"none", "MHSA", "FFN", "both (Houlsby)"};
        snprintf(v->key, sizeof v->key, "%d", s);
        snprintf(v->text, sizeof v->text, "%s", sites[s]);
        v->num = s;
    } else if (!strcmp(name, "~adapter.form")) {
        int s = ti->resolved ? m->adapter.sequential * 2 + m->adapter.after : 0;
        snprintf(v->key, sizeof v->key, "%d", s);
        snprintf(v->text, sizeof v->text, "%s, %s", m->adapter.sequential ? "sequential" : "parallel",
                 m->adapter.after ? "after" : "before");
        v->num = s;
    } else if (!strcmp(name, "~lora.targets")) {
        unsigned t = ti->resolved ? m->lora.targets : 0;
        size_t o = 0;
        v->text[0] = 0;
        for (int i = 0; i < 4; i++)
            if (t & (1u << i)) o += (size_t)snprintf(v->text + o, sizeof v->text - o, "%s%c", o ? "," : "", "qkvo"[i]);
        snprintf(v->key, sizeof v->key, "%u", t);
        // fewer targets first, then q before k before v before o
        v->num = __builtin_popcount(t) * 16 + (double)t;
    } else if (!strcmp(name, "~lora.rank")) {
        if (m->lora.rank > 0) {
            snprintf(v->text, sizeof v->text, "r%d", m->lora.rank);
            v->num = m->lora.rank;
        } else {
            snprintf(v->text, sizeof v->text, "rr %g", m->lora.rr);
            v->num = 1e9 - m->lora.rr;
        }
        snprintf(v->key, sizeof v->key, "%s", v->text);
    } else {
        const setting_def *d = setting_find(name);
        const char *raw = config_get(&ti->kv, name);
        int unset = !raw;
        if (unset) raw = d->dflt && d->dflt[0] ? d->dflt : "none";  // e.g. model.backbone: none (random weights)
        char buf[256];
        const char *nv = unset ? raw : setting_normalize(buf, sizeof buf, name, raw);
        snprintf(v->key, sizeof v->key, "%s", nv);
        snprintf(v->text, sizeof v->text, "%s", nv);
        setting_value sv;
        const setting_def *dd;
        if (!setting_parse_text(&sv, &dd, name, nv, NULL)) {
            if (d->type == SET_NUM) v->num = sv.x;
            else if (d->type != SET_TEXT) v->num = (double)sv.i;
        }
    }
}

// Whether the flags may name a key: "label", "dataset" or a setting.
static int key_valid(const char *name) {
    return !strcmp(name, "label") || !strcmp(name, "dataset") || setting_find(name);
}

static int bad_key(petal_err *err, const char *flag, const char *name) {
    const char *near = setting_nearest(name);
    return petal_fail(err, PETAL_EINPUT,
                      "%s: unknown key '%s' (label, dataset or a setting of docs/SETTINGS.md%s%s%s)", flag,
                      name, near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
}

// Splits a comma list of keys into keys[] (at most 4); checks each.
static int split_keys(char keys[][64], int *nk, const char *list, const char *flag, petal_err *err) {
    *nk = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (*nk == 4) return petal_fail(err, PETAL_EINPUT, "%s: at most 4 keys, got '%s'", flag, list);
        if (!l || l >= 64) return petal_fail(err, PETAL_EINPUT, "%s: bad key list '%s'", flag, list);
        memcpy(keys[*nk], p, l);
        keys[*nk][l] = 0;
        if (!key_valid(keys[*nk])) return bad_key(err, flag, keys[*nk]);
        (*nk)++;
        p = e ? e + 1 : p + l;
    }
    if (!*nk) return petal_fail(err, PETAL_EINPUT, "%s: no key given", flag);
    return PETAL_OK;
}

// ---- groups (rows or columns) ----------------------------------------------------------
typedef struct {
    char *key, *text;
    double num[4];
    char *ntext[4];  // each component's text (ties of num order by text)
    int nk;
    char family[32];
    int mixed;
    long long tmin, tmax;
    double pmin, pmax;
} group;

typedef struct {
    group *g;
    int n;
    size_t cap;
} groups;

static int group_of(groups *gs, char keys[][64], int nk, const trial_info *ti) {
    char key[2048] = "", text[2048] = "";
    key_value v[4];
    size_t ok = 0, ot = 0;
    for (int k = 0; k < nk; k++) {
        value_of(&v[k], keys[k], ti);
        ok += (size_t)snprintf(key + ok, ok < sizeof key ? sizeof key - ok : 0, "%s%s", k ? "\x1e" : "", v[k].key);
        ot += (size_t)snprintf(text + ot, ot < sizeof text ? sizeof text - ot : 0, "%s%s", k ? " · " : "", v[k].text);
    }
    for (int i = 0; i < gs->n; i++)
        if (!strcmp(gs->g[i].key, key)) return i;
    gs->g = petal_grow(gs->g, &gs->cap, (size_t)gs->n + 1, sizeof *gs->g);
    group *g = &gs->g[gs->n];
    memset(g, 0, sizeof *g);
    g->key = xstrdup(key), g->text = xstrdup(text), g->nk = nk;
    for (int k = 0; k < nk; k++) g->num[k] = v[k].num, g->ntext[k] = xstrdup(v[k].text);
    const char *method = config_get(&ti->kv, "method");
    snprintf(g->family, sizeof g->family, "%s", method ? method : "linear");
    return gs->n++;
}

static int group_cmp(const void *pa, const void *pb) {
    const group *a = pa, *b = pb;
    for (int k = 0; k < a->nk && k < b->nk; k++) {
        double x = a->num[k], y = b->num[k];
        if (!isnan(x) && !isnan(y) && x != y) return x < y ? -1 : 1;
        if (isnan(x) != isnan(y)) return isnan(x) ? 1 : -1;
        int c = strcmp(a->ntext[k], b->ntext[k]);
        if (c) return c;
    }
    return strcmp(a->key, b->key);
}

// Two groups that show the same text but group differently (e.g. LoRA with
// two alphas, one label): each gets its grouping key appended.
static void disambiguate(groups *gs) {
    int *clash = petal_calloc((size_t)gs->n + 1, sizeof *clash);
    for (int i = 0; i < gs->n; i++)
        for (int j = 0; j < gs->n && !clash[i]; j++) clash[i] = j != i && !strcmp(gs->g[i].text, gs->g[j].text);
    for (int i = 0; i < gs->n; i++) {
        if (!clash[i]) continue;
        char t[4096];
        size_t o = (size_t)snprintf(t, sizeof t, "%s [", gs->g[i].text);
        for (const char *p = gs->g[i].key; *p && o + 8 < sizeof t; p++)
            t[o++] = *p == '\x1f' ? ' ' : *p == '\x1e' ? ';' : *p;
        snprintf(t + o, sizeof t - o, "]");
        free(gs->g[i].text);
        gs->g[i].text = xstrdup(t);
    }
    free(clash);
}

static void groups_free(groups *gs) {
    for (int i = 0; i < gs->n; i++) {
        free(gs->g[i].key), free(gs->g[i].text);
        for (int k = 0; k < gs->g[i].nk; k++) free(gs->g[i].ntext[k]);
    }
    free(gs->g);
}

// ---- --where ------------------------------------------------------------------------------
typedef struct {
    char key[64];
    char value[256];  // normalised
} where_term;

static int parse_where(where_term *w, const char *arg, petal_err *err) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof w->key)
        return petal_fail(err, PETAL_EINPUT, "--where expects key=value, got '%s'", arg);
    memcpy(w->key, arg, (size_t)(eq - arg));
    w->key[eq - arg] = 0;
    if (!key_valid(w->key)) return bad_key(err, "--where", w->key);
    const char *v = eq + 1;
    if (setting_find(w->key)) {
        setting_value sv;
        const setting_def *d;
        petal_err e;
        if (setting_parse_text(&sv, &d, w->key, v, &e))
            return petal_fail(err, PETAL_EINPUT, "--where %s: %s", arg, e.msg);
        char buf[256];
        v = setting_normalize(buf, sizeof buf, w->key, v);
        snprintf(w->value, sizeof w->value, "%s", v);
    } else {
        snprintf(w->value, sizeof w->value, "%s", v);
    }
    return PETAL_OK;
}

// Kept when every key named matches one of its values.
static int where_keeps(const where_term *w, int nw, const trial_info *ti) {
    for (int i = 0; i < nw; i++) {
        int named_before = 0;
        for (int j = 0; j < i; j++) named_before |= !strcmp(w[j].key, w[i].key);
        if (named_before) continue;
        key_value v;
        value_of(&v, w[i].key, ti);
        int any = 0;
        for (int j = i; j < nw && !any; j++) any = !strcmp(w[j].key, w[i].key) && !strcmp(v.text, w[j].value);
        if (!any) return 0;
    }
    return 1;
}

// ---- building ------------------------------------------------------------------------------
// One value of the metric from a finished trial: mean m over k values with sample std s.
static int trial_value(double *m, double *s, int *k, const results_row *r, report_metric metric) {
    *s = 0, *k = 1;
    switch (metric) {
    case METRIC_TEST_ACC:
        *m = 100.0 * r->test_acc;
        *k = r->folds > 1 ? (int)r->folds : 1;
        *s = *k > 1 && !isnan(r->test_acc_std) ? 100.0 * r->test_acc_std : 0.0;
        break;
    case METRIC_BEST_VALID_ACC: *m = 100.0 * r->best_valid_acc; break;
    case METRIC_SECONDS: *m = r->seconds; break;
    case METRIC_PEAK_RSS: *m = r->peak_rss_mib; break;
    }
    return !isnan(*m);
}

typedef struct {
    report_kind kind;
    const char *title;
    char rows[4][64], cols[4][64];
    int nr, nc;
    const char *require;  // derived key a trial needs (ablations), or NULL
} table_plan;

// An ablation table: one derived row key by one derived column key, over the
// trials that have the `require`d part; its title (kept in title[256]) names the metric.
static void ablation_plan(table_plan *p, char *title, const char *metric, const char *what,
                          const char *row, const char *col, const char *require) {
    p->kind = REPORT_ABLATION;
    snprintf(title, 256, "%s: %s", metric, what);
    p->title = title;
    snprintf(p->rows[0], sizeof p->rows[0], "%s", row);
    snprintf(p->cols[0], sizeof p->cols[0], "%s", col);
    p->nr = p->nc = 1;
    p->require = require;
}

static double rounded(double x, int digits) {
    double p = pow(10.0, digits);
    return round(x * p) / p;
}

static void build_one(report_table *tab, const table_plan *pl, trial_info *ti, const int *keep, int nt,
                      report_metric metric) {
    memset(tab, 0, sizeof *tab);
    tab->metric = metric, tab->kind = pl->kind;
    groups R = {0}, C = {0};
    int *ri = petal_calloc((size_t)nt + 1, sizeof *ri), *ci = petal_calloc((size_t)nt + 1, sizeof *ci);
    for (int i = 0; i < nt; i++) {
        if (!keep[i]) continue;
        ri[i] = group_of(&R, (char(*)[64])pl->rows, pl->nr, &ti[i]);
        ci[i] = group_of(&C, (char(*)[64])pl->cols, pl->nc, &ti[i]);
        tab->trials++;
    }
    // sort, keeping each trial's group through a permutation
    int *rp = petal_calloc((size_t)R.n + 1, sizeof *rp), *cp = petal_calloc((size_t)C.n + 1, sizeof *cp);
    for (int pass = 0; pass < 2; pass++) {
        groups *gs = pass ? &C : &R;
        int *perm = pass ? cp : rp;
        char **keys = petal_calloc((size_t)gs->n + 1, sizeof *keys);
        for (int i = 0; i < gs->n; i++) keys[i] = gs->g[i].key;
        qsort(gs->g, (size_t)gs->n, sizeof *gs->g, group_cmp);
        for (int i = 0; i < gs->n; i++)  // old index -> new index
            for (int j = 0; j < gs->n; j++)
                if (gs->g[j].key == keys[i]) perm[i] = j;
        free(keys);
        disambiguate(gs);
    }
    tab->nr = R.n, tab->nc = C.n;
    tab->rows = petal_calloc((size_t)R.n + 1, sizeof *tab->rows);
    tab->cols = petal_calloc((size_t)C.n + 1, sizeof *tab->cols);
    tab->cells = petal_calloc((size_t)R.n * (size_t)C.n + 1, sizeof *tab->cells);
    // parameter counts per row; family per row
    for (int r = 0; r < R.n; r++) R.g[r].family[0] = 0;
    for (int i = 0; i < nt; i++) {
        if (!keep[i]) continue;
        group *g = &R.g[rp[ri[i]]];
        const char *method = config_get(&ti[i].kv, "method");
        if (!method) method = "linear";
        if (!g->family[0] && !g->mixed) snprintf(g->family, sizeof g->family, "%s", method);
        else if (strcmp(g->family, method)) g->mixed = 1;
        long long tr = ti[i].r->trainable, tot = ti[i].r->total;
        if (tr <= 0) continue;
        double pc = tot > 0 ? 100.0 * (double)tr / (double)tot : NAN;
        if (!g->tmin || tr < g->tmin) g->tmin = tr;
        if (tr > g->tmax) g->tmax = tr;
        if (!isnan(pc) && (g->pmin == 0 || pc < g->pmin)) g->pmin = pc;
        if (!isnan(pc) && pc > g->pmax) g->pmax = pc;
    }
    for (int pass = 0; pass < 2; pass++) {
        groups *gs = pass ? &C : &R;
        report_line *out = pass ? tab->cols : tab->rows;
        int numeric = 1;
        for (int i = 0; i < gs->n; i++) {
            group *g = &gs->g[i];
            out[i].text = xstrdup(g->text);
            out[i].family = xstrdup(g->mixed ? "" : g->family);
            out[i].tmin = g->tmin, out[i].tmax = g->tmax, out[i].pmin = g->pmin, out[i].pmax = g->pmax;
            out[i].sort_num = g->num[0];
            numeric &= g->nk == 1 && !isnan(g->num[0]);
        }
        if (pass) tab->cols_numeric = numeric && strcmp(pl->cols[0], "label") && strcmp(pl->cols[0], "dataset") &&
                                      pl->cols[0][0] != '~';
    }
    // bare numbers as column heads say what they count: "shots 8", "seed 2", "rank 4"
    if (tab->cols_numeric && pl->nc == 1) {
        const char *dot = strrchr(pl->cols[0], '.'), *shortk = dot ? dot + 1 : pl->cols[0];
        for (int i = 0; i < C.n; i++) {
            char t[600];
            snprintf(t, sizeof t, "%s %s", shortk, tab->cols[i].text);
            free(tab->cols[i].text);
            tab->cols[i].text = xstrdup(t);
        }
    }
    // the cells: pooled mean and sample std over every value of every finished trial
    size_t ncell = (size_t)R.n * (size_t)C.n;
    double *sum = petal_calloc(ncell + 1, sizeof *sum), *ss = petal_calloc(ncell + 1, sizeof *ss);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nt; i++) {
            if (!keep[i]) continue;
            size_t at = (size_t)rp[ri[i]] * (size_t)tab->nc + (size_t)cp[ci[i]];
            report_cell *cell = &tab->cells[at];
            double m = NAN, s = 0;
            int k = 1;
            int have = ti[i].done && trial_value(&m, &s, &k, ti[i].r, metric);
            if (pass == 0) {
                cell->trials++;
                cell->failed += ti[i].failed;
                cell->unfinished += !ti[i].done && !ti[i].failed;
                if (have) cell->n += k, sum[at] += k * m;
            } else if (have) {
                // the values' squared deviations: (k - 1) s^2 within the trial, k (m - mean)^2 between
                double mean = sum[at] / cell->n;
                ss[at] += (k - 1) * s * s + k * (m - mean) * (m - mean);
            }
        }
    for (size_t c = 0; c < ncell; c++) {
        report_cell *cell = &tab->cells[c];
        cell->mean = cell->n ? sum[c] / cell->n : NAN;
        cell->std = cell->n > 1 ? sqrt(ss[c] / (cell->n - 1)) : NAN;
    }
    free(sum), free(ss);
    // best per column, on the values as shown (ties all marked), when two or more compete
    int dg = metric_info[metric].digits, hb = metric_info[metric].higher_better;
    for (int c = 0; c < tab->nc; c++) {
        double best = NAN;
        int have = 0;
        for (int r = 0; r < tab->nr; r++) {
            const report_cell *cell = &tab->cells[r * tab->nc + c];
            if (!cell->n) continue;
            double v = rounded(cell->mean, dg);
            have++;
            if (isnan(best) || (hb ? v > best : v < best)) best = v;
        }
        for (int r = 0; r < tab->nr && have >= 2; r++) {
            report_cell *cell = &tab->cells[r * tab->nc + c];
            cell->best = cell->n && rounded(cell->mean, dg) == best;
        }
    }
    snprintf(tab->title, sizeof tab->title, "%s", pl->title);
    for (int pass = 0; pass < 2; pass++) {
        char *out = pass ? tab->col_head : tab->row_head;
        const char(*keys)[64] = pass ? pl->cols : pl->rows;
        int nk = pass ? pl->nc : pl->nr;
        size_t o = 0;
        out[0] = 0;
        for (int k = 0; k < nk; k++) {
            const char *name = keys[k];
            const char *shown = !strcmp(name, "label") ? "method" : name[0] == '~' ? name + 1 : name;
            if (!strcmp(name, "~adapter.site")) shown = "adapter site";
            if (!strcmp(name, "~adapter.form")) shown = "adapter form";
            o += (size_t)snprintf(out + o, o < 256 ? 256 - o : 0, "%s%s", k ? " · " : "", shown);
        }
    }
    groups_free(&R), groups_free(&C);
    free(ri), free(ci), free(rp), free(cp);
}

static int varies(trial_info *ti, const int *keep, int nt, const char *key) {
    const char *first = NULL;
    key_value v;
    char firstbuf[512];
    for (int i = 0; i < nt; i++) {
        if (!keep[i]) continue;
        value_of(&v, key, &ti[i]);
        if (!first) snprintf(firstbuf, sizeof firstbuf, "%s", v.key), first = firstbuf;
        else if (strcmp(first, v.key)) return 1;
    }
    return 0;
}

int report_build(report_table **out, int *nout, const results_table *t, const char *store_name,
                 const report_query *q, petal_err *err) {
    *out = NULL, *nout = 0;
    if (t->n == 0) return petal_fail(err, PETAL_EINPUT, "%s: the store holds no trials", store_name);
    where_term w[REPORT_MAX_WHERE];
    int nw = q->nwhere;
    for (int i = 0; i < nw; i++)
        if (parse_where(&w[i], q->where[i], err)) return PETAL_EINPUT;
    char rk[4][64], ck[4][64];
    int nrk = 0, nck = 0;
    if (q->kind == REPORT_ABLATION && (q->rows || q->cols))
        return petal_fail(err, PETAL_EINPUT, "--rows/--cols: the ablation grids are fixed (adapter site x form, "
                                             "LoRA targets x rank); narrow them with --where");
    if (q->rows && split_keys(rk, &nrk, q->rows, "--rows", err)) return PETAL_EINPUT;
    if (q->cols && split_keys(ck, &nck, q->cols, "--cols", err)) return PETAL_EINPUT;

    int nt = t->n, st = PETAL_OK;
    trial_info *ti = petal_calloc((size_t)nt, sizeof *ti);
    int *keep = petal_calloc((size_t)nt, sizeof *keep);
    for (int i = 0; i < nt; i++) {
        trial_info *x = &ti[i];
        x->r = &t->rows[i];
        petal_err e;
        char name[128];
        snprintf(name, sizeof name, "trial %s", x->r->id);
        if (config_parse_yaml(&x->kv, x->r->config ? x->r->config : "", name, &e)) {
            st = petal_fail(err, PETAL_EINPUT, "%s: %s", store_name, e.msg);
            goto out;
        }
        x->resolved = !trial_settings_resolve(&x->ts, &x->kv, &e);
        method_identity(x->method_id, sizeof x->method_id, &x->kv);
        x->done = !strcmp(status_word(x->r), "done");
        x->failed = !strcmp(status_word(x->r), "failed");
    }
    // one label per method identity: the records' (any trial that ran), else the resolved method's
    for (int i = 0; i < nt; i++) {
        trial_info *x = &ti[i];
        long long tmin = 0;
        int preset = -1;
        for (int j = 0; j < nt; j++) {
            if (strcmp(ti[j].method_id, x->method_id)) continue;
            if (!x->label[0] && ti[j].r->label[0]) snprintf(x->label, sizeof x->label, "%s", ti[j].r->label);
            if (ti[j].r->trainable > 0 && (!tmin || ti[j].r->trainable < tmin)) tmin = ti[j].r->trainable;
        }
        if (!x->label[0] && x->resolved) ast_method_label(x->label, sizeof x->label, &x->ts.method);
        if (!x->label[0]) snprintf(x->label, sizeof x->label, "%s", x->method_id);
        const char *method = config_get(&x->kv, "method");
        preset = choice_index(setting_find("method")->choices, method ? method : "linear");
        x->label_order = (preset < 0 ? 99 : preset) * 1e13 + (double)tmin;
    }
    int kept = 0, finished = 0;
    for (int i = 0; i < nt; i++) {
        keep[i] = where_keeps(w, nw, &ti[i]);
        kept += keep[i];
        finished += keep[i] && (ti[i].done || ti[i].failed);
    }
    if (!kept) {
        char list[1024] = "";
        size_t o = 0;
        for (int i = 0; i < nw; i++) o += (size_t)snprintf(list + o, o < sizeof list ? sizeof list - o : 0, "%s%s",
                                                           i ? " " : "", q->where[i]);
        // what the first key's values are in the store, to help the next try
        char seen[1024] = "";
        size_t so = 0;
        for (int i = 0; i < nt && so < 900; i++) {
            key_value v;
            value_of(&v, w[0].key, &ti[i]);
            char needle[600];
            snprintf(needle, sizeof needle, "'%s'", v.text);
            if (strstr(seen, needle)) continue;
            so += (size_t)snprintf(seen + so, sizeof seen - so, "%s%s", so ? ", " : "", needle);
        }
        st = petal_fail(err, PETAL_EINPUT, "--where %s: no trial of %s matches (%s takes %s there)", list,
                        store_name, w[0].key, seen);
        goto out;
    }
    // An early-stopped sweep has news before any trial runs to its full budget
    // (trials paused at their rungs): its tables then show every cell
    // unfinished, and its Search section (report_write) the progress.
    int trained = 0;
    report_search se;
    for (int i = 0; !finished && i < nt; i++) trained |= t->rows[i].epochs > 0;
    if (!finished && !(trained && report_search_summary(&se, t))) {
        st = petal_fail(err, PETAL_EINPUT, "%s: no trial has finished yet (%d of %d %s); nothing to report",
                        store_name, kept, nt, nw ? "kept by --where, none done or failed" : "pending or running");
        goto out;
    }
    table_plan plans[2];
    int np = 0;
    memset(plans, 0, sizeof plans);
    const char *mt = metric_info[q->metric].title;
    char titles[2][256];
    if (q->kind == REPORT_ABLATION) {
        int have_ad = 0, have_lora = 0;
        for (int i = 0; i < nt; i++) {
            if (!keep[i] || !ti[i].resolved) continue;
            have_ad |= ti[i].ts.method.adapter.at_mhsa || ti[i].ts.method.adapter.at_ffn;
            have_lora |= ti[i].ts.method.lora.targets != 0;
        }
        if (!have_ad && !have_lora) {
            st = petal_fail(err, PETAL_EINPUT, "--table ablation: %s has no adapter or LoRA trial%s", store_name,
                            nw ? " that --where keeps" : "");
            goto out;
        }
        if (have_ad)
            ablation_plan(&plans[np], titles[np], mt, "adapter placement (site x form)", "~adapter.site",
                          "~adapter.form", "adapter"), np++;
        if (have_lora)
            ablation_plan(&plans[np], titles[np], mt, "LoRA targets x rank", "~lora.targets", "~lora.rank",
                          "lora"), np++;
    } else {
        table_plan *p = &plans[np++];
        p->kind = q->kind;
        if (nrk) {
            memcpy(p->rows, rk, sizeof rk), p->nr = nrk;
        } else {
            strcpy(p->rows[0], "label"), p->nr = 1;
            if (q->kind == REPORT_FEWSHOT && varies(ti, keep, nt, "dataset")) strcpy(p->rows[1], "dataset"), p->nr = 2;
        }
        if (nck) {
            memcpy(p->cols, ck, sizeof ck), p->nc = nck;
        } else {
            strcpy(p->cols[0], q->kind == REPORT_FEWSHOT ? "dataset.shots" : "dataset"), p->nc = 1;
        }
        static const char *const what[] = {"by method and dataset", "by training examples per class (shots)",
                                           "by trainable parameters", ""};
        if (nrk || nck) snprintf(titles[0], sizeof titles[0], "%s", mt);
        else snprintf(titles[0], sizeof titles[0], "%s %s", mt, what[q->kind]);
        p->title = titles[0];
    }
    *out = petal_calloc((size_t)np, sizeof **out);
    int *sub = petal_calloc((size_t)nt, sizeof *sub);
    for (int k = 0; k < np; k++) {
        for (int i = 0; i < nt; i++) {
            sub[i] = keep[i];
            if (plans[k].require && !strcmp(plans[k].require, "adapter"))
                sub[i] &= ti[i].resolved && (ti[i].ts.method.adapter.at_mhsa || ti[i].ts.method.adapter.at_ffn);
            if (plans[k].require && !strcmp(plans[k].require, "lora"))
                sub[i] &= ti[i].resolved && ti[i].ts.method.lora.targets != 0;
        }
        build_one(&(*out)[k], &plans[k], ti, sub, nt, q->metric);
    }
    free(sub);
    *nout = np;
out:
    for (int i = 0; i < nt; i++) config_free(&ti[i].kv);
    free(ti), free(keep);
    return st;
}

void report_tables_free(report_table *tabs, int n) {
    for (int k = 0; tabs && k < n; k++) {
        report_table *t = &tabs[k];
        for (int i = 0; i < t->nr; i++) free(t->rows[i].text), free(t->rows[i].family);
        for (int i = 0; i < t->nc; i++) free(t->cols[i].text), free(t->cols[i].family);
        free(t->rows), free(t->cols), free(t->cells);
    }
    free(tabs);
}

// ---- the search (early stopping) ---------------------------------------------------------
int report_search_summary(report_search *s, const results_table *t) {
    memset(s, 0, sizeof *s);
    s->best = -1;
    if (!t->early_stop || !t->early_stop[0] || !strcmp(t->early_stop, "none")) return 0;
    snprintf(s->rule, sizeof s->rule, "%s", t->early_stop);
    char kind[16] = "";
    // the attribute is "<kind> min_epochs=<m> eta=<e>" (results/store.h)
    if (sscanf(s->rule, "%15s min_epochs=%d eta=%d", kind, &s->min_epochs, &s->eta) != 3 || s->min_epochs < 1 ||
        s->eta < 2)
        s->min_epochs = s->eta = 0;
    s->asha = !strcmp(kind, "asha") || !strncmp(s->rule, "asha", 4);
    s->spent = t->epochs_spent;
    s->trials = t->n;
    // the rungs below the largest budget; a trial of a smaller one has those below its own
    long long rtop = 0;
    for (int i = 0; i < t->n; i++)
        if (t->rows[i].max_epochs > rtop) rtop = t->rows[i].max_epochs;
    for (long long r = s->min_epochs; s->eta && r < rtop && s->nrungs < REPORT_MAX_RUNGS; r *= s->eta)
        s->rungs[s->nrungs++].epoch = r;
    config_kv *kv = petal_calloc((size_t)t->n + 1, sizeof *kv);
    for (int i = 0; i < t->n; i++) {
        const results_row *r = &t->rows[i];
        petal_err e;
        if (config_parse_yaml(&kv[i], r->config ? r->config : "", r->id, &e)) {  // then no settings known
            config_free(&kv[i]);
            memset(&kv[i], 0, sizeof kv[i]);
        }
        const char *st = r->status;
        int paused = !strcmp(st, "paused"), on = 0;
        s->done += !strcmp(st, "done");
        s->failed += !strcmp(st, "failed");
        s->in_progress += !strcmp(st, "running") || !strcmp(st, "pending") || !strcmp(st, "stopped");
        s->paused += paused && strcmp(r->decision, "stopped");
        s->stopped += paused && !strcmp(r->decision, "stopped");
        // the full grid runs every trial to max_epochs on each of its folds
        long long folds = r->folds;
        if (folds < 1) {  // not started: its fold count is known only once it runs
            const char *fold = config_get(&kv[i], "dataset.fold");
            s->full_lower |= fold && !strcmp(fold, "all");
            folds = 1;
        }
        if (r->max_epochs > 0) {
            s->full += r->max_epochs * folds;
            if (!s->rmin || r->max_epochs < s->rmin) s->rmin = r->max_epochs;
            if (r->max_epochs > s->rmax) s->rmax = r->max_epochs;
        } else {
            s->full_lower = 1;
        }
        // rung by rung: a trial went on from a rung below the epochs it has, or
        // stands there with the decision to go on (promoted, not yet run further)
        int go = !strcmp(r->decision, "promoted") || !strcmp(r->decision, "continued");
        for (int k = 0; k < s->nrungs && s->rungs[k].epoch < r->max_epochs; k++) {
            report_rung *g = &s->rungs[k];
            if (r->epochs < g->epoch) break;
            g->reached++;
            if (r->epochs > g->epoch || go) g->promoted++, on = 1;
            else if (paused && !strcmp(r->decision, "stopped")) g->stopped++;
            else if (paused) g->paused++;
        }
        s->promoted += on;
        if (!strcmp(st, "done") && !isnan(r->best_valid_acc) &&
            (s->best < 0 || r->best_valid_acc > t->rows[s->best].best_valid_acc ||
             (r->best_valid_acc == t->rows[s->best].best_valid_acc && strcmp(r->id, t->rows[s->best].id) < 0)))
            s->best = i;
    }
    for (int i = 0; s->best >= 0 && i < t->n; i++)
        s->best_ties += i != s->best && !strcmp(t->rows[i].status, "done") &&
                        t->rows[i].best_valid_acc == t->rows[s->best].best_valid_acc;
    // the best trial's settings that vary between the trials (the point the search found)
    size_t o = 0;
    for (int k = 0; s->best >= 0 && k < kv[s->best].n; k++) {  // in the identity text's order (sorted keys)
        const char *key = kv[s->best].e[k].key, *v = kv[s->best].e[k].value;
        int varies = 0;
        for (int i = 0; i < t->n && !varies; i++) {
            const char *w = config_get(&kv[i], key);
            varies = !w || strcmp(v, w);
        }
        if (varies && o < sizeof s->best_settings)
            o += (size_t)snprintf(s->best_settings + o, sizeof s->best_settings - o, "%s%s=%s", o ? " " : "", key, v);
    }
    for (int i = 0; i < t->n; i++) config_free(&kv[i]);
    free(kv);
    return 1;
}

// ---- writing ----------------------------------------------------------------------------
// Whether the table's rows are methods (then it shows parameter counts).
static int rows_are_methods(const report_table *t) {
    return strstr(t->row_head, "method") != NULL || t->kind == REPORT_SCALING;
}

static void fmt_count(char *out, size_t n, long long x) {
    char d[32];
    int len = snprintf(d, sizeof d, "%lld", x), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0) out[o++] = ',';
        out[o++] = d[i];
    }
    out[o] = 0;
}

static void fmt_params(char *out, size_t n, const report_line *l) {
    char a[32], b[32];
    if (!l->tmin) {
        snprintf(out, n, "?");
        return;
    }
    fmt_count(a, sizeof a, l->tmin), fmt_count(b, sizeof b, l->tmax);
    if (l->tmin == l->tmax) snprintf(out, n, "%s", a);
    else snprintf(out, n, "%s–%s", a, b);
}

static void fmt_pct(char *out, size_t n, const report_line *l) {
    if (!l->tmin || l->pmax == 0) snprintf(out, n, "?");
    else if (fabs(l->pmax - l->pmin) < 0.005) snprintf(out, n, "%.2f", l->pmin);
    else snprintf(out, n, "%.2f–%.2f", l->pmin, l->pmax);
}

// A cell as text: "71.2 ± 3.1 (3)", "71.2 (1)", with "; 1 failed, 2 unfinished"; "–" when
// the study has no trial there. value: the number part; rest: the counts part.
static void fmt_cell(char *value, size_t nv, char *rest, size_t nr, const report_cell *c, int digits) {
    value[0] = rest[0] = 0;
    if (!c->trials) {
        snprintf(value, nv, "–");
        return;
    }
    if (c->n && !isnan(c->std)) snprintf(value, nv, "%.*f ± %.*f (%d)", digits, c->mean, digits, c->std, c->n);
    else if (c->n) snprintf(value, nv, "%.*f (%d)", digits, c->mean, c->n);
    else snprintf(value, nv, "–");
    size_t o = 0;
    if (c->failed) o += (size_t)snprintf(rest + o, nr - o, "%d failed", c->failed);
    if (c->unfinished && o < nr) o += (size_t)snprintf(rest + o, nr - o, "%s%d unfinished", o ? ", " : "", c->unfinished);
    (void)o;
}

static const char *legend(const report_table *t, char *buf, size_t n) {
    static const char *const over[] = {"seeds and folds", "trials (one value each)"};
    snprintf(buf, n,
             "Cells: mean ± std (n) of %s over %s, %d trials; bold: best of its column; "
             "– : no finished trial (failed and unfinished trials are counted in their cell).",
             metric_info[t->metric].axis, over[t->metric != METRIC_TEST_ACC], t->trials);
    return buf;
}

static void write_md(FILE *f, const report_table *t) {
    int dg = metric_info[t->metric].digits, pm = rows_are_methods(t);
    char v[256], r[128], b[64], legendbuf[512];
    fprintf(f, "### %s\n\n| %s |", t->title, t->row_head);
    if (pm) fprintf(f, " trainable params | %% of total |");
    for (int c = 0; c < t->nc; c++) fprintf(f, " %s |", t->cols[c].text);
    fprintf(f, "\n|---|");
    if (pm) fprintf(f, "---:|---:|");
    for (int c = 0; c < t->nc; c++) fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int i = 0; i < t->nr; i++) {
        fprintf(f, "| %s |", t->rows[i].text);
        if (pm) {
            fmt_params(v, sizeof v, &t->rows[i]), fmt_pct(b, sizeof b, &t->rows[i]);
            fprintf(f, " %s | %s |", v, b);
        }
        for (int c = 0; c < t->nc; c++) {
            const report_cell *cell = &t->cells[i * t->nc + c];
            fmt_cell(v, sizeof v, r, sizeof r, cell, dg);
            fprintf(f, " %s%s%s%s%s%s |", cell->best ? "**" : "", v, cell->best ? "**" : "", r[0] ? " (" : "", r,
                    r[0] ? ")" : "");
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n%s\n", legend(t, legendbuf, sizeof legendbuf));
}

static void csv_field(FILE *f, const char *s) {
    if (strpbrk(s, ",\"\n\r")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

static void csv_num(FILE *f, double x) {
    if (!isnan(x)) fprintf(f, ",%.10g", x);
    else fputc(',', f);
}

// Tidy: one line per cell, every number at full precision (pandas pivots it back).
static void write_csv(FILE *f, const report_table *tabs, int n) {
    fprintf(f, "table,row_key,row,col_key,col,metric,mean,std,n,trials,failed,unfinished,best,"
               "trainable_min,trainable_max,percent_min,percent_max\n");
    for (int k = 0; k < n; k++) {
        const report_table *t = &tabs[k];
        for (int i = 0; i < t->nr; i++)
            for (int c = 0; c < t->nc; c++) {
                const report_cell *cell = &t->cells[i * t->nc + c];
                const report_line *l = &t->rows[i];
                csv_field(f, t->title), fputc(',', f), csv_field(f, t->row_head), fputc(',', f);
                csv_field(f, l->text), fputc(',', f), csv_field(f, t->col_head), fputc(',', f);
                csv_field(f, t->cols[c].text), fprintf(f, ",%s", report_metric_names[t->metric]);
                csv_num(f, cell->mean), csv_num(f, cell->std);
                fprintf(f, ",%d,%d,%d,%d,%d", cell->n, cell->trials, cell->failed, cell->unfinished, cell->best);
                if (l->tmin) fprintf(f, ",%lld,%lld", l->tmin, l->tmax);
                else fprintf(f, ",,");
                csv_num(f, l->tmin ? l->pmin : NAN), csv_num(f, l->tmin ? l->pmax : NAN);
                fputc('\n', f);
            }
    }
}

static void tex_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (!strncmp(s, "·", strlen("·"))) fputs("$\\cdot$", f), s += strlen("·") - 1;
        else if (!strncmp(s, "±", strlen("±"))) fputs("$\\pm$", f), s += strlen("±") - 1;
        else if (!strncmp(s, "–", strlen("–"))) fputs("--", f), s += strlen("–") - 1;
        else if (strchr("&%$#_{}", *s)) fprintf(f, "\\%c", *s);
        else if (*s == '~') fputs("\\textasciitilde{}", f);
        else if (*s == '^') fputs("\\textasciicircum{}", f);
        else if (*s == '\\') fputs("\\textbackslash{}", f);
        else fputc(*s, f);
    }
}

static void write_tex(FILE *f, const report_table *t) {
    int dg = metric_info[t->metric].digits, pm = rows_are_methods(t);
    char v[256], r[128], b[64], legendbuf[512];
    fprintf(f, "%% petal report (booktabs): %s\n\\begin{table}[t]\n\\centering\n\\caption{", t->title);
    tex_text(f, t->title);
    fprintf(f, ". ");
    tex_text(f, legend(t, legendbuf, sizeof legendbuf));
    fprintf(f, "}\n\\begin{tabular}{l%s", pm ? "rr" : "");
    for (int c = 0; c < t->nc; c++) fprintf(f, "r");
    fprintf(f, "}\n\\toprule\n");
    tex_text(f, t->row_head);
    if (pm) fprintf(f, " & params & \\%%");
    for (int c = 0; c < t->nc; c++) fprintf(f, " & "), tex_text(f, t->cols[c].text);
    fprintf(f, " \\\\\n\\midrule\n");
    for (int i = 0; i < t->nr; i++) {
        tex_text(f, t->rows[i].text);
        if (pm) {
            fmt_params(v, sizeof v, &t->rows[i]), fmt_pct(b, sizeof b, &t->rows[i]);
            fprintf(f, " & "), tex_text(f, v), fprintf(f, " & "), tex_text(f, b);
        }
        for (int c = 0; c < t->nc; c++) {
            const report_cell *cell = &t->cells[i * t->nc + c];
            fmt_cell(v, sizeof v, r, sizeof r, cell, dg);
            fprintf(f, " & ");
            if (cell->best) fprintf(f, "\\textbf{");
            tex_text(f, v);
            if (cell->best) fprintf(f, "}");
            if (r[0]) fprintf(f, " ("), tex_text(f, r), fprintf(f, ")");
        }
        fprintf(f, " \\\\\n");
    }
    fprintf(f, "\\bottomrule\n\\end{tabular}\n\\end{table}\n");
}

// The Search section as (name, value) lines of text, one source for every format.
enum { SEARCH_LINES = 5 };
static const char search_title[] = "Search (early stopping)";
static const char search_legend[] =
    "Epochs count every fold; the full grid trains every trial of the store to its full budget "
    "(max_epochs x folds). The best is over the trials run to their full budget (done).";

static void search_lines(char name[SEARCH_LINES][32], char value[SEARCH_LINES][2048], const report_search *s,
                         const results_table *t) {
    char a[32], b[32];
    size_t o;
    // the rule and its rungs
    snprintf(name[0], 32, "early stopping");
    o = (size_t)snprintf(value[0], 2048, "%s (", s->rule);
    if (s->nrungs) o += (size_t)snprintf(value[0] + o, 2048 - o, "rungs at");
    else if (s->eta && s->rmax) o += (size_t)snprintf(value[0] + o, 2048 - o, "no rung below the full budget");
    for (int k = 0; k < s->nrungs; k++)
        o += (size_t)snprintf(value[0] + o, 2048 - o, "%s %lld", k ? "," : "", s->rungs[k].epoch);
    if (s->nrungs) o += (size_t)snprintf(value[0] + o, 2048 - o, " epochs");
    const char *sep = value[0][o - 1] == '(' ? "" : "; ";
    if (!s->rmax) snprintf(value[0] + o, 2048 - o, "%sfull budget unknown)", sep);
    else if (s->rmin == s->rmax) snprintf(value[0] + o, 2048 - o, "%sfull budget %lld epochs)", sep, s->rmax);
    else snprintf(value[0] + o, 2048 - o, "%sfull budget %lld–%lld epochs)", sep, s->rmin, s->rmax);
    // the budget against the full grid
    snprintf(name[1], 32, "epochs trained");
    fmt_count(a, sizeof a, s->spent), fmt_count(b, sizeof b, s->full);
    if (s->spent < 0) snprintf(value[1], 2048, "unknown (the store has no epochs_spent); the full grid's: %s", b);
    else if (s->full > 0)
        snprintf(value[1], 2048, "%s of the full grid's %s%s (%.1f%%; %.1f%% saved)", a, s->full_lower ? "at least " : "",
                 b, 100.0 * (double)s->spent / (double)s->full, 100.0 - 100.0 * (double)s->spent / (double)s->full);
    else snprintf(value[1], 2048, "%s (the full grid's budget is unknown)", a);
    // the trials' states
    snprintf(name[2], 32, "trials");
    o = (size_t)snprintf(value[2], 2048, "%d: %d done, %d paused, %d stopped early, %d %s", s->trials, s->done,
                         s->paused, s->stopped, s->promoted, s->asha ? "promoted at least once" : "continued past a rung");
    if (s->in_progress) o += (size_t)snprintf(value[2] + o, 2048 - o, ", %d in progress", s->in_progress);
    if (s->failed) snprintf(value[2] + o, 2048 - o, ", %d failed", s->failed);
    // rung by rung
    snprintf(name[3], 32, "rungs");
    o = 0;
    value[3][0] = 0;
    for (int k = 0; k < s->nrungs && o < 2048; k++) {
        const report_rung *g = &s->rungs[k];
        o += (size_t)snprintf(value[3] + o, 2048 - o, "%sepoch %lld: %d reached, %d %s", k ? "; " : "", g->epoch,
                              g->reached, g->promoted, s->asha ? "promoted" : "continued");
        if (g->paused || s->asha) o += (size_t)snprintf(value[3] + o, o < 2048 ? 2048 - o : 0, ", %d paused", g->paused);
        if (g->stopped || !s->asha)
            o += (size_t)snprintf(value[3] + o, o < 2048 ? 2048 - o : 0, ", %d stopped", g->stopped);
    }
    if (!s->nrungs) snprintf(value[3], 2048, "none");
    // what the search found
    snprintf(name[4], 32, "best valid accuracy");
    if (s->best < 0) {
        snprintf(value[4], 2048, "none yet (no trial has run to its full budget)");
    } else {
        const results_row *r = &t->rows[s->best];
        o = (size_t)snprintf(value[4], 2048, "%.2f%% by trial %s (%s%s%s), test accuracy %.2f%%", 100.0 * r->best_valid_acc,
                             r->id, r->label, s->best_settings[0] ? "; " : "", s->best_settings, 100.0 * r->test_acc);
        if (s->best_ties && o < 2048)
            snprintf(value[4] + o, 2048 - o, "; %d more done trial%s tie", s->best_ties, s->best_ties > 1 ? "s" : "");
    }
}

static void write_search_md(FILE *f, const report_search *s, const results_table *t) {
    char name[SEARCH_LINES][32], value[SEARCH_LINES][2048];
    search_lines(name, value, s, t);
    fprintf(f, "### %s\n\n", search_title);
    for (int k = 0; k < SEARCH_LINES; k++) fprintf(f, "- **%s**: %s\n", name[k], value[k]);
    fprintf(f, "\n%s\n", search_legend);
}

static void write_search_tex(FILE *f, const report_search *s, const results_table *t) {
    char name[SEARCH_LINES][32], value[SEARCH_LINES][2048];
    search_lines(name, value, s, t);
    fprintf(f, "%% petal report (booktabs): %s\n\\begin{table}[t]\n\\centering\n\\caption{", search_title);
    tex_text(f, search_title), fprintf(f, ". "), tex_text(f, search_legend);
    fprintf(f, "}\n\\begin{tabular}{lp{0.7\\linewidth}}\n\\toprule\n");
    for (int k = 0; k < SEARCH_LINES; k++) {
        tex_text(f, name[k]), fprintf(f, " & "), tex_text(f, value[k]), fprintf(f, " \\\\\n");
        if (k == 0) fprintf(f, "\\midrule\n");
    }
    fprintf(f, "\\bottomrule\n\\end{tabular}\n\\end{table}\n");
}

static void html_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static void write_html_table(FILE *f, const report_table *t, const char *fig) {
    int dg = metric_info[t->metric].digits, pm = rows_are_methods(t);
    char v[256], r[128], b[64], legendbuf[512];
    fprintf(f, "<section>\n<h2>"), html_text(f, t->title), fprintf(f, "</h2>\n<table class=\"report\">\n<thead><tr><th>");
    html_text(f, t->row_head);
    fprintf(f, "</th>");
    if (pm) fprintf(f, "<th>trainable params</th><th>%% of total</th>");
    for (int c = 0; c < t->nc; c++) fprintf(f, "<th>"), html_text(f, t->cols[c].text), fprintf(f, "</th>");
    fprintf(f, "</tr></thead>\n<tbody>\n");
    for (int i = 0; i < t->nr; i++) {
        fprintf(f, "<tr><th>"), html_text(f, t->rows[i].text), fprintf(f, "</th>");
        if (pm) {
            fmt_params(v, sizeof v, &t->rows[i]), fmt_pct(b, sizeof b, &t->rows[i]);
            fprintf(f, "<td>%s</td><td>%s</td>", v, b);
        }
        for (int c = 0; c < t->nc; c++) {
            const report_cell *cell = &t->cells[i * t->nc + c];
            fmt_cell(v, sizeof v, r, sizeof r, cell, dg);
            fprintf(f, "<td%s>", cell->best ? " class=\"best\"" : "");
            if (cell->best) fprintf(f, "<strong>");
            html_text(f, v);
            if (cell->best) fprintf(f, "</strong>");
            if (r[0]) fprintf(f, " <span class=\"miss\">("), html_text(f, r), fprintf(f, ")</span>");
            fprintf(f, "</td>");
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</tbody>\n</table>\n<p class=\"legend\">"), html_text(f, legend(t, legendbuf, sizeof legendbuf));
    fprintf(f, "</p>\n");
    if (fig) fprintf(f, "<figure>\n%s\n</figure>\n", fig);
    fprintf(f, "</section>\n");
}

static void write_search_html(FILE *f, const report_search *s, const results_table *t) {
    char name[SEARCH_LINES][32], value[SEARCH_LINES][2048];
    search_lines(name, value, s, t);
    fprintf(f, "<section id=\"search\">\n<h2>"), html_text(f, search_title), fprintf(f, "</h2>\n<dl>\n");
    for (int k = 0; k < SEARCH_LINES; k++) {
        fprintf(f, "<dt>"), html_text(f, name[k]), fprintf(f, "</dt><dd>"), html_text(f, value[k]);
        fprintf(f, "</dd>\n");
    }
    fprintf(f, "</dl>\n<p class=\"legend\">"), html_text(f, search_legend), fprintf(f, "</p>\n</section>\n");
}

static void write_html(FILE *f, const report_table *tabs, int n, char *const *figs, const results_table *s,
                       const char *store_name) {
    int counts[6] = {0};
    static const char *const st[] = {"done", "failed", "running", "pending", "stopped", "paused"};
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < 6; k++) counts[k] += !strcmp(s->rows[i].status, st[k]);
    char now[32];
    time_t tt = time(NULL);
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>petal report: ");
    html_text(f, s->study);
    fprintf(f, "</title>\n<style>\n"
               "body{font-family:sans-serif;margin:2em auto;max-width:70em;color:#111;background:#fff}\n"
               "table{border-collapse:collapse;margin:1em 0}\n"
               "th,td{padding:.3em .7em;border-bottom:1px solid #bbb;text-align:right;white-space:nowrap}\n"
               "tbody th,thead th:first-child{text-align:left}\n"
               "thead th{border-bottom:2px solid #111}\n"
               "td.best{background:#e8f0ff}\n"
               ".miss{color:#a00}\n"
               ".legend{font-size:.9em;color:#444}\n"
               "pre{background:#f4f4f4;padding:.8em;overflow:auto}\n"
               "figure svg{max-width:100%%;height:auto}\n"
               "dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}\n"
               "dt{font-weight:bold}\n"
               "</style>\n</head>\n<body>\n<h1>petal report: ");
    html_text(f, s->study);
    fprintf(f, "</h1>\n<p>%d trials: %d done, %d failed, %d running, %d pending, %d stopped, %d paused.</p>\n", s->n,
            counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]);
    for (int k = 0; k < n; k++) write_html_table(f, &tabs[k], figs ? figs[k] : NULL);
    report_search se;
    if (report_search_summary(&se, s)) write_search_html(f, &se, s);
    fprintf(f, "<section>\n<h2>Provenance</h2>\n<dl>\n");
    const char *pairs[][2] = {{"store", store_name},         {"study", s->study},
                              {"spec hash", s->spec_hash},   {"petal version (store)", s->version},
                              {"host", s->host},             {"created", s->created},
                              {"updated", s->updated},       {"report made", now},
                              {"report by", petal_version()}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        fprintf(f, "<dt>"), html_text(f, pairs[i][0]), fprintf(f, "</dt><dd>");
        html_text(f, pairs[i][1] ? pairs[i][1] : "");
        fprintf(f, "</dd>\n");
    }
    fprintf(f, "</dl>\n<h3>Libraries</h3>\n<pre>"), html_text(f, s->libraries), fprintf(f, "</pre>\n");
    fprintf(f, "<h3>Spec</h3>\n<pre>"), html_text(f, s->spec), fprintf(f, "</pre>\n</section>\n</body>\n</html>\n");
}

int report_write(FILE *f, report_format fmt, const report_table *tabs, int n, char *const *figs,
                 const results_table *store, const char *store_name) {
    if (fmt == FORMAT_CSV) {
        write_csv(f, tabs, n);
    } else if (fmt == FORMAT_HTML) {
        write_html(f, tabs, n, figs, store, store_name);
    } else {
        for (int k = 0; k < n; k++) {
            if (k) fputc('\n', f);
            if (fmt == FORMAT_MD) write_md(f, &tabs[k]);
            else write_tex(f, &tabs[k]);
        }
        report_search se;
        if (report_search_summary(&se, store)) {
            fputc('\n', f);
            if (fmt == FORMAT_MD) write_search_md(f, &se, store);
            else write_search_tex(f, &se, store);
        }
    }
    return ferror(f) ? PETAL_EFAIL : PETAL_OK;
}
