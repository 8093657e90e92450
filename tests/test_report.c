// Reports from hand-built stores with known numbers: the grouping and its
// order, pooled means and stds over seeds and folds, counts of failed and
// unfinished trials, missing cells, best marking (ties, lower-is-better
// metrics), --where filters, other row/column keys, the few-shot and
// ablation grids, and the Markdown text.
//   test_report                 runs the checks
//   test_report --make-store D  writes the stores D/known and D/grids (for tests/test_report.sh)
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/method.h"
#include "core/trial.h"
#include "results/report.h"
#include "tests/check.h"

// 21 trials: linear on esc50 only (gsc excluded: a missing cell), LoRA r4 / r8 and
// Pfeiffer d8 on both, 3 seeds each.
static const char known_spec[] =
    "study: known\n"
    "base: {train.epochs: 1, dataset.root: /nonexistent/data}\n"
    "grid:\n"
    "  dataset.layout: [esc50, gsc]\n"
    "  train.seed: [1, 2, 3]\n"
    "  method: [linear, {method: lora, lora.rank: [4, 8]}, {method: adapter_pfeiffer, adapter.dim: 8}]\n"
    "exclude:\n"
    "  - {method: linear, dataset.layout: gsc}\n";

// 24 trials: LoRA targets x 2, Pfeiffer site x form x 4, shots 1 / 4, seeds 1 / 2.
static const char grids_spec[] =
    "study: grids\n"
    "grid:\n"
    "  train.seed: [1, 2]\n"
    "  dataset.shots: [1, 4]\n"
    "  method:\n"
    "    - {method: lora, lora.targets: [qv, qkvo], lora.rank: 4}\n"
    "    - {method: adapter_pfeiffer, adapter.location: [ffn, mhsa], adapter.conf: [parallel, sequential]}\n";

typedef struct {
    const char *status;  // done, failed, or NULL: no record (pending)
    int folds;
    double acc, acc_std, valid;
    long long trainable, total;
} outcome;

static int get_int(const config_kv *kv, const char *key) {
    const char *v = config_get(kv, key);
    return v ? atoi(v) : 0;
}

// The known store's numbers: one outcome per trial from its settings.
static outcome known_outcome(const config_kv *kv) {
    const char *method = config_get(kv, "method"), *layout = config_get(kv, "dataset.layout");
    int seed = get_int(kv, "train.seed"), rank = get_int(kv, "lora.rank"), gsc = !strcmp(layout, "gsc");
    outcome o = {"done", 1, 0, 0, 0, 0, 1000};
    if (!strcmp(method, "linear")) {  // esc50: 50 60 70 -> 60.0 ± 10.0 (3)
        o.acc = 0.4 + 0.1 * seed, o.valid = o.acc + 0.05, o.trainable = 100;
    } else if (rank == 4) {
        o.trainable = gsc ? 320 : 300;
        if (gsc) {  // 0.61 0.62 0.63 -> 62.0 ± 1.0 (3)
            o.acc = 0.6 + 0.01 * seed;
        } else if (seed == 1) {  // two folds at 0.70 (std 0.10), two at 0.80 (std 0), one failed
            o.folds = 2, o.acc = 0.70, o.acc_std = 0.10;
        } else if (seed == 2) {
            o.folds = 2, o.acc = 0.80;
        } else {
            o.status = "failed";
        }
        o.valid = o.acc;
    } else if (rank == 8) {  // esc50: all failed; gsc: one done at 0.90, two pending
        o.trainable = 400;
        if (!gsc) o.status = "failed";
        else if (seed == 1) o.acc = 0.90, o.valid = 0.5;
        else o.status = NULL;
    } else {  // Pfeiffer: esc50 74.0 ± 0.0 (3); gsc 85, 95 -> 90.0 ± 7.1 (2), one pending
        o.trainable = 500, o.total = 10000;
        o.acc = gsc ? (seed == 1 ? 0.85 : 0.95) : 0.74, o.valid = o.acc;
        if (gsc && seed == 3) o.status = NULL;
    }
    return o;
}

static outcome grids_outcome(const config_kv *kv) {
    outcome o = {"done", 1, 0, 0, 0, 50, 1000};
    // acc = shots / 10 + seed / 100 (+ 0.2 for sequential adapters, + 0.1 at the MHSA, + 0.05 for qkvo)
    o.acc = get_int(kv, "dataset.shots") / 10.0 + get_int(kv, "train.seed") / 100.0;
    const char *conf = config_get(kv, "adapter.conf"), *loc = config_get(kv, "adapter.location");
    const char *targets = config_get(kv, "lora.targets");
    if (conf && !strcmp(conf, "sequential")) o.acc += 0.2;
    if (loc && !strcmp(loc, "mhsa")) o.acc += 0.1;
    if (targets && !strcmp(targets, "qkvo")) o.acc += 0.05, o.trainable = 90;
    o.valid = o.acc;
    return o;
}

static int make_store(const char *dir, const char *spec_text, outcome (*fn)(const config_kv *)) {
    sweep_spec spec;
    petal_err err;
    if (sweep_spec_parse(&spec, spec_text, dir, &err)) {
        fprintf(stderr, "spec: %s\n", err.msg);
        return 1;
    }
    results_store s;
    if (results_store_open(&s, dir, &spec, 0, NULL, &err)) {
        fprintf(stderr, "store: %s\n", err.msg);
        sweep_spec_free(&spec);
        return 1;
    }
    int st = 0;
    for (int i = 0; i < spec.n && !st; i++) {
        const sweep_trial *t = &spec.trials[i];
        outcome o = fn(&t->kv);
        if (!o.status) continue;
        results_record rec;
        memset(&rec, 0, sizeof rec);
        memcpy(rec.id, t->id, sizeof rec.id);
        rec.config = t->identity;
        rec.attempts = 1;
        rec.status = !strcmp(o.status, "done") ? RS_DONE : RS_FAILED;
        if (rec.status == RS_FAILED) snprintf(rec.error, sizeof rec.error, "diverged (made up)");
        trial_record *r = &rec.r;
        r->status = rec.status == RS_DONE ? TRIAL_DONE : TRIAL_FAILED;
        r->n_folds = o.folds;
        fold_record folds[4];
        memset(folds, 0, sizeof folds);
        for (int f = 0; f < o.folds; f++) folds[f].fold = f + 1, folds[f].test_acc = o.acc;
        r->folds = folds;
        r->test_acc_mean = o.acc, r->test_acc_std = o.acc_std, r->best_valid_acc_mean = o.valid;
        r->seconds = 10.0 * get_int(&t->kv, "train.seed");
        r->peak_rss_mib = 100.0 + get_int(&t->kv, "train.seed");
        r->trainable = (size_t)o.trainable, r->total = (size_t)o.total;
        // the label as a trial computes it
        trial_settings ts;
        if (!trial_settings_resolve(&ts, &t->kv, &err) && !ast_method_resolve(&ts.method, 768, 12, &err))
            ast_method_label(r->label, sizeof r->label, &ts.method);
        results_record_stamp(&rec);
        st = results_store_put(&s, i, &rec, &err);
        if (st) fprintf(stderr, "put: %s\n", err.msg);
    }
    if (!st && results_store_flush(&s, 1, &err)) fprintf(stderr, "flush: %s\n", err.msg), st = 1;
    results_store_close(&s);
    sweep_spec_free(&spec);
    return st;
}

static report_table *build(const results_table *t, report_query q, int *n, petal_err *err) {
    report_table *tabs = NULL;
    *n = 0;
    int st = report_build(&tabs, n, t, "STORE", &q, err);
    return st ? NULL : tabs;
}

static const report_cell *cell(const report_table *t, int r, int c) { return &t->cells[r * t->nc + c]; }

static int near(double a, double b) { return fabs(a - b) < 1e-9; }

static char *render(const report_table *tabs, int n, report_format fmt, const results_table *store) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    report_write(f, fmt, tabs, n, NULL, store, "STORE");
    fclose(f);
    return buf;
}

static void check_known(const results_table *t) {
    petal_err err;
    int n;
    report_query q = {REPORT_MAIN, METRIC_TEST_ACC, NULL, NULL, {0}, 0};
    report_table *m = build(t, q, &n, &err);
    CHECK(m && n == 1, "main table builds: %s", m ? "" : err.msg);
    if (!m) return;
    CHECK(m->nr == 4 && m->nc == 2, "4 methods x 2 datasets, got %d x %d", m->nr, m->nc);
    if (m->nr != 4 || m->nc != 2) return;
    const char *rows[] = {"linear", "LoRA r4 (q,v)", "LoRA r8 (q,v)", "Pfeiffer d8"};
    for (int i = 0; i < 4; i++) CHECK(!strcmp(m->rows[i].text, rows[i]), "row %d is '%s', want '%s'", i, m->rows[i].text, rows[i]);
    CHECK(!strcmp(m->cols[0].text, "esc50") && !strcmp(m->cols[1].text, "gsc"), "columns esc50, gsc: %s, %s",
          m->cols[0].text, m->cols[1].text);
    CHECK(m->trials == 21, "21 trials counted, got %d", m->trials);
    // linear esc50: 50 60 70
    const report_cell *c = cell(m, 0, 0);
    CHECK(c->n == 3 && near(c->mean, 60.0) && near(c->std, 10.0) && c->trials == 3 && !c->failed,
          "linear esc50 = 60 ± 10 (3): %g ± %g (%d)", c->mean, c->std, c->n);
    c = cell(m, 0, 1);
    CHECK(c->trials == 0 && c->n == 0 && isnan(c->mean) && !c->best, "linear gsc is a missing cell (%d trials)", c->trials);
    // LoRA r4 esc50: folds 0.70±0.10 x2, 0.80 x2, one failed -> 75 ± sqrt(0.02/3)
    c = cell(m, 1, 0);
    CHECK(c->n == 4 && near(c->mean, 75.0) && near(c->std, 100.0 * sqrt(0.02 / 3.0)) && c->failed == 1 &&
              c->trials == 3 && c->best,
          "LoRA r4 esc50 = 75 ± 8.165 (4), 1 failed, best: %g ± %g (%d) failed %d best %d", c->mean, c->std, c->n,
          c->failed, c->best);
    c = cell(m, 1, 1);
    CHECK(c->n == 3 && near(c->mean, 62.0) && near(c->std, 1.0) && !c->best, "LoRA r4 gsc 62 ± 1 (3): %g ± %g", c->mean, c->std);
    c = cell(m, 2, 0);
    CHECK(c->n == 0 && c->failed == 3 && c->trials == 3 && isnan(c->mean), "LoRA r8 esc50: 3 failed, no value");
    c = cell(m, 2, 1);
    CHECK(c->n == 1 && near(c->mean, 90.0) && isnan(c->std) && c->unfinished == 2 && c->best,
          "LoRA r8 gsc 90 (1), 2 unfinished, best (a tie): %g n %d unf %d best %d", c->mean, c->n, c->unfinished, c->best);
    c = cell(m, 3, 0);
    CHECK(c->n == 3 && near(c->mean, 74.0) && near(c->std, 0.0) && !c->best, "Pfeiffer esc50 74 ± 0 (3), not best");
    c = cell(m, 3, 1);
    CHECK(c->n == 2 && near(c->mean, 90.0) && near(c->std, 100.0 * sqrt(0.005)) && c->unfinished == 1 && c->best,
          "Pfeiffer gsc 90 ± 7.07 (2), 1 unfinished, best (tie): %g ± %g", c->mean, c->std);
    CHECK(m->rows[1].tmin == 300 && m->rows[1].tmax == 320 && near(m->rows[1].pmin, 30.0) && near(m->rows[1].pmax, 32.0),
          "LoRA r4 trainable 300-320, 30-32%%");
    CHECK(m->rows[3].tmin == 500 && near(m->rows[3].pmin, 5.0), "Pfeiffer 500 = 5%%");
    // the Markdown text
    char *md = render(m, 1, FORMAT_MD, t);
    const char *want[] = {
        "| method | trainable params | % of total | esc50 | gsc |",
        "| linear | 100 | 10.00 | 60.0 ± 10.0 (3) | – |",
        "| LoRA r4 (q,v) | 300–320 | 30.00–32.00 | **75.0 ± 8.2 (4)** (1 failed) | 62.0 ± 1.0 (3) |",
        "| LoRA r8 (q,v) | 400 | 40.00 | – (3 failed) | **90.0 (1)** (2 unfinished) |",
        "| Pfeiffer d8 | 500 | 5.00 | 74.0 ± 0.0 (3) | **90.0 ± 7.1 (2)** (1 unfinished) |",
    };
    for (int i = 0; i < 5; i++) CHECK(md && strstr(md, want[i]), "markdown has '%s'\n%s", want[i], md ? md : "");
    free(md);
    report_tables_free(m, n);

    // lower is better: seconds (10 x seed) -> best is the smallest mean
    q.metric = METRIC_SECONDS;
    m = build(t, q, &n, &err);
    CHECK(m && near(cell(m, 0, 0)->mean, 20.0) && near(cell(m, 1, 0)->mean, 15.0) && cell(m, 1, 0)->n == 2 &&
              cell(m, 1, 0)->best && !cell(m, 0, 0)->best,
          "seconds: one value per trial, smallest is best");
    report_tables_free(m, n);
    q.metric = METRIC_BEST_VALID_ACC;
    m = build(t, q, &n, &err);
    CHECK(m && near(cell(m, 0, 0)->mean, 65.0) && near(cell(m, 0, 0)->std, 10.0), "best_valid_acc linear esc50 65 ± 10");
    report_tables_free(m, n);
    q.metric = METRIC_TEST_ACC;

    // filters: one key twice = either value; two keys = both
    q.where[0] = "dataset.layout=gsc", q.nwhere = 1;
    m = build(t, q, &n, &err);
    CHECK(m && m->nc == 1 && m->nr == 3 && m->trials == 9, "--where dataset.layout=gsc: 3 x 1, 9 trials");
    report_tables_free(m, n);
    q.where[0] = "method=linear", q.where[1] = "method=adapter_pfeiffer", q.where[2] = "train.seed=2", q.nwhere = 3;
    m = build(t, q, &n, &err);
    CHECK(m && m->nr == 2 && m->trials == 3 && cell(m, 0, 0)->n == 1 && near(cell(m, 0, 0)->mean, 60.0),
          "--where method twice (or) and train.seed (and): 2 rows, 3 trials");
    report_tables_free(m, n);
    q.where[0] = "train.seed=02", q.nwhere = 1;  // normalised by the key's type
    m = build(t, q, &n, &err);
    CHECK(m && m->trials == 7, "--where train.seed=02 matches seed 2 (7 trials)");
    report_tables_free(m, n);
    q.where[0] = "method=full";
    m = build(t, q, &n, &err);
    CHECK(!m && strstr(err.msg, "--where method=full: no trial of STORE matches"), "a filter keeping nothing: %s", err.msg);
    q.where[0] = "lora.rnak=4";
    m = build(t, q, &n, &err);
    CHECK(!m && strstr(err.msg, "did you mean lora.rank?"), "unknown --where key: %s", err.msg);
    q.where[0] = "train.seed=x";
    m = build(t, q, &n, &err);
    CHECK(!m && strstr(err.msg, "--where train.seed=x"), "bad --where value: %s", err.msg);
    q.where[0] = "lora.rank=8", q.where[1] = "dataset.layout=esc50", q.nwhere = 2;
    m = build(t, q, &n, &err);
    CHECK(m && m->nr == 1 && cell(m, 0, 0)->failed == 3, "only failed trials: a table of counts");
    report_tables_free(m, n);
    q.nwhere = 0;

    // other keys: seeds as rows, methods as columns; composite rows
    q.rows = "train.seed", q.cols = "label";
    m = build(t, q, &n, &err);
    CHECK(m && m->nr == 3 && m->nc == 4 && !strcmp(m->rows[2].text, "3") && !strcmp(m->cols[3].text, "Pfeiffer d8") &&
              cell(m, 0, 0)->n == 1 && near(cell(m, 0, 0)->mean, 50.0) && cell(m, 0, 1)->n == 3,
          "--rows train.seed --cols label");
    report_tables_free(m, n);
    q.rows = "label,dataset", q.cols = "train.seed";
    m = build(t, q, &n, &err);
    CHECK(m && m->nr == 7 && !strcmp(m->rows[1].text, "LoRA r4 (q,v) · esc50") && m->cols_numeric,
          "--rows label,dataset: 7 rows, composite text: %s", m ? m->rows[1].text : err.msg);
    report_tables_free(m, n);
    q.rows = "lora.rnk";
    m = build(t, q, &n, &err);
    CHECK(!m && strstr(err.msg, "--rows: unknown key 'lora.rnk'"), "unknown --rows key: %s", err.msg);
    q.rows = q.cols = NULL;
}

static void check_grids(const results_table *t) {
    petal_err err;
    int n;
    report_query q = {REPORT_FEWSHOT, METRIC_TEST_ACC, NULL, NULL, {0}, 0};
    report_table *m = build(t, q, &n, &err);
    CHECK(m && m->nr == 6 && m->nc == 2 && m->cols_numeric && !strcmp(m->cols[0].text, "shots 1") &&
              !strcmp(m->cols[1].text, "shots 4"),
          "fewshot: 6 methods x shots 1, 4");
    if (m && m->nr == 6) {
        // LoRA q,v at 4 shots: 0.41, 0.42
        CHECK(!strcmp(m->rows[0].text, "LoRA r4 (q,v)") && near(cell(m, 0, 1)->mean, 41.5) && cell(m, 0, 1)->n == 2,
              "fewshot LoRA q,v at 4 shots 41.5 (2): %s %g", m->rows[0].text, cell(m, 0, 1)->mean);
    }
    report_tables_free(m, n);
    q.kind = REPORT_ABLATION;
    m = build(t, q, &n, &err);
    CHECK(m && n == 2, "ablation: two grids");
    if (m && n == 2) {
        const report_table *a = &m[0], *l = &m[1];
        CHECK(a->nr == 2 && a->nc == 2 && !strcmp(a->rows[0].text, "MHSA") && !strcmp(a->rows[1].text, "FFN") &&
                  !strcmp(a->cols[1].text, "sequential, before"),
              "adapter grid: sites MHSA, FFN x parallel/sequential");
        // MHSA sequential: shots {1,4} x seeds {1,2}: 0.1/0.4 + 0.01/0.02 + 0.3
        CHECK(a->nr == 2 && a->nc == 2 && cell(a, 0, 1)->n == 4 && near(cell(a, 0, 1)->mean, 100 * (0.25 + 0.015 + 0.3)) &&
                  cell(a, 0, 1)->best,
              "MHSA sequential = 56.5 (4), best");
        CHECK(l->nr == 2 && l->nc == 1 && !strcmp(l->rows[1].text, "q,k,v,o") && !strcmp(l->cols[0].text, "r4") &&
                  l->nr == 2 && near(cell(l, 1, 0)->mean, 100 * (0.25 + 0.015 + 0.05)),
              "LoRA grid: q,v / q,k,v,o x r4");
    }
    report_tables_free(m, n);
    q.kind = REPORT_ABLATION, q.rows = "train.seed";
    m = build(t, q, &n, &err);
    CHECK(!m && strstr(err.msg, "--rows/--cols"), "ablation refuses --rows");
    q.kind = REPORT_SCALING, q.rows = NULL;
    m = build(t, q, &n, &err);
    CHECK(m && m->nr == 6 && !strcmp(m->rows[0].family, "lora") && !strcmp(m->rows[5].family, "adapter_pfeiffer"),
          "scaling rows carry their family");
    report_tables_free(m, n);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--make-store")) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/known", argv[2]);
        snprintf(b, sizeof b, "%s/grids", argv[2]);
        return make_store(a, known_spec, known_outcome) || make_store(b, grids_spec, grids_outcome);
    }
    char dir[] = "/tmp/petal_test_report_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/known", dir);
    snprintf(b, sizeof b, "%s/grids", dir);
    CHECK(!make_store(a, known_spec, known_outcome) && !make_store(b, grids_spec, grids_outcome), "stores written");
    results_table t;
    petal_err err;
    if (!results_table_read(&t, a, &err)) {
        check_known(&t);
        results_table_free(&t);
    } else {
        CHECK(0, "read %s: %s", a, err.msg);
    }
    if (!results_table_read(&t, b, &err)) {
        check_grids(&t);
        results_table_free(&t);
    } else {
        CHECK(0, "read %s: %s", b, err.msg);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return check_done("test_report");
}
