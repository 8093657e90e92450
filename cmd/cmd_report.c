// `petal report RUN`: the comparison tables and figures of a results store.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "results/report.h"

static const char usage[] =
    "usage: petal report RUN [options]\n"
    "Tables (and figures) of the results store RUN/results.h5: rows and columns by\n"
    "any trial setting, cells \"mean ± std (n)\" over seeds and folds, the best of\n"
    "each column in bold, failed and unfinished trials counted in their cells.\n"
    "Reads the store as it is, also while a sweep is still writing it.\n"
    "  --table main|fewshot|scaling|ablation\n"
    "                     main (default): methods x datasets with trainable parameters;\n"
    "                     fewshot: methods x dataset.shots; scaling: methods by trainable\n"
    "                     parameters (figure: log x, one line per method family);\n"
    "                     ablation: adapter site x form and LoRA targets x rank grids\n"
    "  --rows KEYS        row keys, comma-separated: label (a method with its settings),\n"
    "                     dataset, or any setting (docs/SETTINGS.md), e.g. label,train.lr\n"
    "  --cols KEYS        column keys, the same way (default: dataset; fewshot: dataset.shots)\n"
    "  --where KEY=VALUE  keep trials whose KEY is VALUE (repeatable: one key given twice\n"
    "                     keeps either value; different keys must all match)\n"
    "  --metric M         test_acc (default), best_valid_acc, seconds, peak_rss_mib\n"
    "  --format F         md (default), csv (one line per cell), tex (booktabs), html (one\n"
    "                     self-contained page: tables, figures, spec, provenance); by\n"
    "                     default taken from --out's extension\n"
    "  --out FILE         write there (atomically) instead of stdout\n"
    "  --plot FILE.png|FILE.svg  the table's figure (gnuplot); an ablation's second grid\n"
    "                     goes to FILE-2.png\n"
    "Without --table, an html page holds every table the store supports (main, and\n"
    "fewshot, scaling, ablation when their settings vary).\n"
    "A store whose sweep had early_stop: (ASHA, the median rule) also gets a Search\n"
    "section (md, tex, html; csv stays one line per cell): the epochs trained against\n"
    "the full grid's, trials done / paused / stopped early / promoted, rung by rung,\n"
    "and the best valid accuracy found (its trial, method and settings).\n"
    "Exit 0 ok, 1 a file could not be written or gnuplot failed, 2 bad flags or a store\n"
    "that cannot be reported (another version, no trials, nothing finished and, with\n"
    "early stopping, nothing trained yet, a filter that keeps no trial).\n";

// The other tables an html page adds when the store supports them.
static int worth_adding(const report_table *t) {
    if (t->kind == REPORT_FEWSHOT) return t->nc >= 2;
    if (t->kind == REPORT_ABLATION) return t->nr >= 2 || t->nc >= 2;
    if (t->kind == REPORT_SCALING)  // a family at two sizes or more
        for (int i = 0; i < t->nr; i++)
            for (int j = i + 1; j < t->nr; j++)
                if (t->rows[i].family[0] && !strcmp(t->rows[i].family, t->rows[j].family) &&
                    t->rows[i].tmin != t->rows[j].tmin)
                    return 1;
    return 0;
}

static const char *extension(const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

int cmd_report(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    report_query q = {REPORT_MAIN, METRIC_TEST_ACC, NULL, NULL, {0}, 0};
    const char *run = NULL, *out = NULL, *plot = NULL, *v;
    int format = -1, kind_given = 0;
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        if (args_flag(&a, "--table", &v)) {
            if (v && (int)(q.kind = report_kind_parse(v)) < 0) {
                fprintf(stderr, "petal report: --table expects main, fewshot, scaling or ablation, got '%s'\n", v);
                a.bad = 1;
            }
            kind_given = 1;
        } else if (args_flag(&a, "--metric", &v)) {
            if (v && (int)(q.metric = report_metric_parse(v)) < 0) {
                fprintf(stderr, "petal report: --metric expects test_acc, best_valid_acc, seconds or "
                                "peak_rss_mib, got '%s'\n", v);
                a.bad = 1;
            }
        } else if (args_flag(&a, "--format", &v)) {
            if (v && (format = report_format_parse(v)) < 0) {
                fprintf(stderr, "petal report: --format expects md, csv, tex or html, got '%s'\n", v);
                a.bad = 1;
            }
        } else if (args_flag(&a, "--where", &v)) {
            if (v && q.nwhere == REPORT_MAX_WHERE) {
                fprintf(stderr, "petal report: --where: at most %d terms\n", REPORT_MAX_WHERE);
                a.bad = 1;
            } else if (v) {
                q.where[q.nwhere++] = v;
            }
        } else if (args_flag(&a, "--rows", &q.rows) || args_flag(&a, "--cols", &q.cols) ||
                   args_flag(&a, "--out", &out) || args_flag(&a, "--plot", &plot)) {
        } else if (argv[a.i][0] != '-' && !run) {
            run = argv[a.i];
        } else {
            args_unknown(&a, "report");
        }
    }
    if (a.bad) return 2;
    if (!run) {
        fprintf(stderr, "petal report: RUN is required (a sweep's --out folder; see petal report --help)\n");
        return 2;
    }
    if (format < 0 && out) {
        const char *ext = extension(out);
        format = !strcmp(ext, "html") || !strcmp(ext, "htm") ? FORMAT_HTML
                 : !strcmp(ext, "csv")                       ? FORMAT_CSV
                 : !strcmp(ext, "tex")                       ? FORMAT_TEX
                                                             : FORMAT_MD;
    }
    if (format < 0) format = FORMAT_MD;
    if (plot && strcmp(extension(plot), "png") && strcmp(extension(plot), "svg")) {
        fprintf(stderr, "petal report: --plot %s: the figure's name must end in .png or .svg\n", plot);
        return 2;
    }

    char store[4200];
    snprintf(store, sizeof store, "%s/results.h5", run);
    results_table t;
    petal_err err;
    int st = results_table_read(&t, run, &err);
    if (st) {
        fprintf(stderr, "petal report: %s\n", err.msg);
        return 2;
    }
    report_table *tabs = NULL;
    int n = 0;
    if ((st = report_build(&tabs, &n, &t, store, &q, &err))) {
        fprintf(stderr, "petal report: %s\n", err.msg);
        results_table_free(&t);
        return 2;
    }
    // an html page without --table: every table the store supports
    if (format == FORMAT_HTML && !kind_given && !q.rows && !q.cols) {
        for (int k = REPORT_FEWSHOT; k <= REPORT_ABLATION; k++) {
            report_query q2 = q;
            q2.kind = (report_kind)k;
            report_table *more;
            int m;
            if (report_build(&more, &m, &t, store, &q2, &err)) continue;
            for (int j = 0; j < m; j++) {
                if (!worth_adding(&more[j])) continue;
                tabs = realloc(tabs, (size_t)(n + 1) * sizeof *tabs);
                if (!tabs) petal_oom((size_t)(n + 1) * sizeof *tabs);
                tabs[n++] = more[j];
                memset(&more[j], 0, sizeof more[j]);
            }
            report_tables_free(more, m);
        }
    }
    char **figs = NULL;
    if (format == FORMAT_HTML) {
        figs = petal_calloc((size_t)n, sizeof *figs);
        for (int k = 0; k < n; k++)
            if (!(figs[k] = report_plot_svg(&tabs[k], &err)))
                fprintf(stderr, "petal report: warning: the page has no figure for '%s': %s\n", tabs[k].title,
                        err.msg);
    }
    char tmp[4300];
    FILE *f = stdout;
    if (out) {
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
        if (!(f = fopen(tmp, "w"))) {
            fprintf(stderr, "petal report: --out %s: cannot write (%s)\n", out, strerror(errno));
            st = 1;
        }
    }
    if (!st) {
        st = report_write(f, (report_format)format, tabs, n, figs, &t, store);
        if (out) {
            st |= fclose(f) != 0;
            if (!st && rename(tmp, out)) st = 1;
            if (st) {
                fprintf(stderr, "petal report: --out %s: cannot write (%s)\n", out, strerror(errno));
                unlink(tmp);
            }
        } else if (fflush(stdout)) {
            st = 1;
        }
    }
    for (int k = 0; !st && plot && k < n; k++) {
        char path[4200];
        if (k == 0) {
            snprintf(path, sizeof path, "%s", plot);
        } else {  // FILE-2.png
            const char *ext = extension(plot);
            snprintf(path, sizeof path, "%.*s-%d.%s", (int)(ext - plot - 1), plot, k + 1, ext);
        }
        if (report_plot(&tabs[k], path, &err)) {
            fprintf(stderr, "petal report: --plot %s: %s\n", path, err.msg);
            st = 1;
        }
    }
    for (int k = 0; figs && k < n; k++) free(figs[k]);
    free(figs);
    report_tables_free(tabs, n);
    results_table_free(&t);
    return st ? 1 : 0;
}
