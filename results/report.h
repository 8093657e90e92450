// Reports: the comparison tables of a results store (RUN/results.h5, read with
// results_table_read) grouped by any trial setting, in Markdown, CSV, LaTeX
// and one self-contained HTML page, and their figures (gnuplot, results/plot.c).
//
// A table has rows and columns, each given by one or more keys (joined with
// " · "): a settings-table key (core/settings.h; a trial's value, or the key's
// default when the trial does not set it), `label` (the method with its
// settings, "LoRA r8 (q,v)": the records' label, one row per distinct set of
// method settings) or `dataset` (dataset.layout, with the root when a layout
// has several). A cell aggregates every trial of its row and column:
// "mean ± std (n)" of the metric over the finished trials, where test
// accuracy counts every fold of every seed (pooled exactly from each trial's
// fold mean and std) and the other metrics one value per trial; trials that
// failed or have not finished are counted in the cell, never dropped.
#ifndef PETAL_RESULTS_REPORT_H
#define PETAL_RESULTS_REPORT_H
#include <stdio.h>

#include "results/store.h"

typedef enum { REPORT_MAIN, REPORT_FEWSHOT, REPORT_SCALING, REPORT_ABLATION } report_kind;
typedef enum { METRIC_TEST_ACC, METRIC_BEST_VALID_ACC, METRIC_SECONDS, METRIC_PEAK_RSS } report_metric;
typedef enum { FORMAT_MD, FORMAT_CSV, FORMAT_TEX, FORMAT_HTML } report_format;

// Names <-> values ("main|fewshot|scaling|ablation", "test_acc|...", "md|csv|tex|html"); -1 when unknown.
int report_kind_parse(const char *name);
int report_metric_parse(const char *name);
int report_format_parse(const char *name);
extern const char *const report_kind_names[], *const report_metric_names[], *const report_format_names[];

#define REPORT_MAX_WHERE 32
typedef struct {
    report_kind kind;
    report_metric metric;
    const char *rows, *cols;  // comma lists of keys; NULL: the kind's default
    // --where key=value: a trial is kept when, for every key named, its value
    // is one of the values given for that key (normalised by the key's type)
    const char *where[REPORT_MAX_WHERE];
    int nwhere;
} report_query;

typedef struct {
    int n;                        // values aggregated (test_acc: folds of finished trials)
    int trials, failed, unfinished;  // trials in the cell: all, failed, not finished
    double mean, std;             // NaN when n == 0; std NaN when n < 2
    int best;                     // best of its column (ties all marked)
} report_cell;

typedef struct {
    char *text;                   // what the table shows
    char *family;                 // the method preset of the row's trials ("lora"), or "" when mixed
    long long tmin, tmax;         // trainable parameters over the row's trials (0: unknown)
    double pmin, pmax;            // the same in % of the model's total
    double sort_num;              // the row's order
} report_line;

typedef struct {
    char title[256];
    char row_head[256], col_head[256];
    report_metric metric;
    report_kind kind;
    int nr, nc;
    report_line *rows;            // (nr)
    report_line *cols;            // (nc)
    int cols_numeric;             // every column value is a number (col x = cols[c].sort_num)
    report_cell *cells;           // (nr, nc) row-major
    int trials;                   // trials of the store the table counts (after --where)
} report_table;

// Builds the table(s) of a query from a store: one table, or for
// REPORT_ABLATION one per ablation that the store has (adapter placement,
// LoRA targets). Keys that are not settings, a bad --where, a filter keeping
// no trial, a store with no trials or no finished trial, an ablation without
// its trials: PETAL_EINPUT naming the flag or the store. Free with report_tables_free.
int report_build(report_table **out, int *n, const results_table *t, const char *store_name,
                 const report_query *q, petal_err *err);
void report_tables_free(report_table *tabs, int n);

// ---- the search: what early stopping spent and found -----------------------------------
// A store whose sweep had `early_stop:` (its early_stop attribute is not
// "none") gets a "Search" section: the rule, the epochs trained (epochs_spent)
// against the full grid's (every trial's max_epochs x folds), the trials done /
// paused / stopped early / promoted, each rung's counts, and the best
// best_valid_acc of the done trials. Always over the whole store (--where
// narrows the tables, not the search).
#define REPORT_MAX_RUNGS 32
typedef struct {
    long long epoch;  // min_epochs * eta^k
    int reached;      // trials whose history reaches this epoch (below their max_epochs)
    int promoted;     // went on from it (ASHA promoted, median continued), or were let go on
    int paused;       // left paused here (ASHA)
    int stopped;      // stopped here for good (median rule)
} report_rung;

typedef struct {
    char rule[96];              // the early_stop attribute, "asha min_epochs=1 eta=3"
    int asha;                   // 1 ASHA, 0 the median rule
    int min_epochs, eta;        // parsed from rule (0: the rule did not parse; no rungs then)
    long long spent;            // epochs trained, every fold, each once (epochs_spent)
    long long full;             // the full grid's: max_epochs x folds summed over every trial
    int full_lower;             // full is a lower bound (a trial not started on dataset.fold=all)
    long long rmin, rmax;       // the trials' max_epochs (the full budget), smallest and largest
    int trials, done, paused, stopped, promoted, in_progress, failed;
    int nrungs;
    report_rung rungs[REPORT_MAX_RUNGS];
    int best;                   // row of the done trial with the best best_valid_acc (ties: the
                                // smallest id), -1 when no trial is done
    int best_ties;              // other done trials with exactly that value
    char best_settings[1024];   // its settings that vary between the store's trials, "k=v k=v"
} report_search;

// Fills *s from a store; 1 when the store's sweep had early stopping, 0 when
// not (a plain grid or sampled search, or a store from before early stopping).
int report_search_summary(report_search *s, const results_table *t);

// The tables in one format. md, csv, tex: tables only, then the Search
// section (md, tex) when the store has early stopping; csv stays one line per
// cell. html: one page with the tables, each table's figure (inline SVG, when
// figs[i] is not NULL), the Search section, the spec and the store's provenance.
int report_write(FILE *f, report_format fmt, const report_table *tabs, int n, char *const *figs,
                 const results_table *store, const char *store_name);

// The figure of a table with gnuplot (a child process) into path: PNG
// (pngcairo) or SVG by path's extension. fewshot: metric vs shots per row;
// scaling: metric vs trainable parameters (log x) per method family; other
// tables: one point per row and column. Error bars: the std over seeds/folds.
int report_plot(const report_table *t, const char *path, petal_err *err);
// The figure as SVG text for inlining (malloc'd), or NULL with err.
char *report_plot_svg(const report_table *t, petal_err *err);
#endif
