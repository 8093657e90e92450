// ==== Early stopping: rungs, ASHA promotions, the median rule ====================
#include "coordinator/early.h"

#include <stdlib.h>
#include <string.h>

int early_rung(const early_stop *es, int max_epochs, int epoch) {
    long r = es->min_epochs;
    for (int k = 0; r < max_epochs; k++, r *= es->eta)
        if (r == epoch) return k;
    return -1;
}

int early_budget_after(const early_stop *es, int max_epochs, int done) {
    for (long r = es->min_epochs; r < max_epochs; r *= es->eta)
        if (r > done) return (int)r;
    return max_epochs;
}

int early_epochs(const results_record *r) {
    return r->r.n_folds ? r->r.folds[0].epochs : 0;
}

static double metric_at(const results_record *r, int epoch) {
    return r->r.folds[0].history[epoch - 1].valid_acc;
}

// A trial that stopped at the end of its budget, on a rung, with no decision yet.
static int undecided(const results_record *r, const early_stop *es, int max_epochs) {
    int e = early_epochs(r);
    return r->status == RS_STOPPED && !r->decision[0] && r->epochs_budget > 0 && e >= r->epochs_budget &&
           early_rung(es, max_epochs, e) >= 0;
}

typedef struct {
    double m;
    const char *id;
} entry;

static int by_metric(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->m != y->m) return x->m > y->m ? -1 : 1;
    return strcmp(x->id, y->id);
}

// Rung (epoch) results of the trials with a history that reaches it: sorted
// best first into *out (malloc'd); returns their count.
static int rung_results(entry **out, const results_store *s, const char *active, int epoch, int done_only) {
    int n = s->spec->n, k = 0;
    entry *e = petal_malloc(sizeof *e * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        const results_record *r = &s->rows[i];
        if (!active[i] || r->status == RS_FAILED || (done_only && r->status != RS_DONE)) continue;
        if (early_epochs(r) >= epoch) e[k++] = (entry){metric_at(r, epoch), r->id};
    }
    qsort(e, (size_t)k, sizeof *e, by_metric);
    *out = e;
    return k;
}

// The rungs' sorted results, computed once per decision round: (epoch) -> entries.
typedef struct {
    int epoch, n;
    entry *e;
} rung_cache;

// ASHA: is trial i in the top floor(n / eta) of the rung at epoch?
static int in_top(rung_cache **rc, int *nrc, const results_store *s, const char *active, int i, int epoch,
                  int eta) {
    int c = 0;
    while (c < *nrc && (*rc)[c].epoch != epoch) c++;
    if (c == *nrc) {
        size_t cap = (size_t)*nrc;
        *rc = petal_grow(*rc, &cap, (size_t)*nrc + 1, sizeof **rc);
        (*rc)[c].epoch = epoch;
        (*rc)[c].n = rung_results(&(*rc)[c].e, s, active, epoch, 0);
        ++*nrc;
    }
    const rung_cache *r = &(*rc)[c];
    int top = r->n / eta, in = 0;
    for (int k = 0; k < top && !in; k++) in = !strcmp(r->e[k].id, s->rows[i].id);
    return in;
}

// Median rule: is trial i's metric at epoch below the finished trials' median?
static int below_median(const results_store *s, const char *active, int i, int epoch) {
    entry *e;
    int n = rung_results(&e, s, active, epoch, 1);
    double med = n == 0 ? 0 : n % 2 ? e[n / 2].m : 0.5 * (e[n / 2 - 1].m + e[n / 2].m);
    free(e);
    return n > 0 && metric_at(&s->rows[i], epoch) < med;
}

static int write_row(results_store *s, int i, int status, const char *decision, petal_err *err) {
    results_record *r = &s->rows[i];
    r->status = status;
    snprintf(r->decision, sizeof r->decision, "%s", decision);
    s->dirty = 1;
    char path[4300];
    snprintf(path, sizeof path, "%s/trials/%s/record.bin", s->dir, r->id);
    return results_record_write(r, path, err);
}

int early_decide(results_store *s, const early_stop *es, const int *max_epochs, const char *active,
                 int *changed, petal_err *err) {
    int n = s->spec->n, st = PETAL_OK, nrc = 0;
    rung_cache *rc = NULL;  // decisions change no history, so the rungs hold for the round
    *changed = 0;
    // Every decision reads only the histories (which trials reach which epoch),
    // never other decisions: the order of this loop changes nothing.
    for (int i = 0; i < n && !st; i++) {
        results_record *r = &s->rows[i];
        if (!active[i] || !undecided(r, es, max_epochs[i])) continue;
        int e = early_epochs(r);
        if (es->kind == EARLY_ASHA)
            st = in_top(&rc, &nrc, s, active, i, e, es->eta) ? write_row(s, i, RS_STOPPED, "promoted", err)
                                                  : write_row(s, i, RS_PAUSED, "paused", err);
        else
            st = below_median(s, active, i, e) ? write_row(s, i, RS_PAUSED, "stopped", err)
                                               : write_row(s, i, RS_STOPPED, "continued", err);
        ++*changed;
    }
    for (int i = 0; i < n && !st && es->kind == EARLY_ASHA; i++) {
        results_record *r = &s->rows[i];
        if (!active[i] || r->status != RS_PAUSED || strcmp(r->decision, "paused")) continue;
        int e = early_epochs(r);
        if (early_rung(es, max_epochs[i], e) < 0 || !in_top(&rc, &nrc, s, active, i, e, es->eta)) continue;
        st = write_row(s, i, RS_STOPPED, "promoted", err);
        ++*changed;
    }
    for (int c = 0; c < nrc; c++) free(rc[c].e);
    free(rc);
    return st;
}

int early_next(const results_record *row, const early_stop *es, int max_epochs) {
    if (row->status == RS_DONE || row->status == RS_FAILED || row->status == RS_PAUSED) return 0;
    if (undecided(row, es, max_epochs)) return 0;
    return early_budget_after(es, max_epochs, early_epochs(row));
}
