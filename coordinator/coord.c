// ==== The coordinator loop, cost estimates, the local executor ====================
#include "coordinator/coord.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/early.h"
#include "coordinator/preflight.h"
#include "core/backbone.h"
#include "core/settings.h"
#include "core/trial.h"

char *coord_settings_text(const sweep_trial *t) {
    config_kv kv = {0};
    for (int i = 0; i < t->kv.n; i++)
        if (strcmp(t->kv.e[i].key, "train.threads")) config_set(&kv, t->kv.e[i].key, t->kv.e[i].value, "", 0, 0);
    char *text = config_to_yaml(&kv);
    config_free(&kv);
    return text;
}

double coord_estimate(const sweep_trial *t) {
    trial_settings ts;
    ast_config cfg;
    if (trial_settings_resolve(&ts, &t->kv, NULL)) return 1.0;
    if (ts.drill) return ts.drill == 2 ? ts.drill_seconds : ts.drill == 5 ? ts.drill_seconds * ts.epochs : 1e-3;
    if (ts.backbone[0] ? backbone_read_config(&cfg, NULL, ts.backbone, NULL)
                       : ast_config_preset(&cfg, ts.size, ts.frames, 2, NULL))
        return 1.0;
    cfg.frames = ts.frames;
    double T = ast_tokens(&cfg), C = cfg.C, L = cfg.L, M = cfg.MLP;
    double fwd = 2.0 * L * T * (4.0 * C * C + 2.0 * C * M) + 4.0 * L * T * T * C;  // per example
    double train = ts.method.base == METHOD_FULL ? 3.0 : 2.0;
    double examples = ts.shots > 0 ? ts.shots * 10.0 : 1000.0;  // the class count is the data's
    double folds = ts.fold ? 1.0 : 5.0;
    return fwd * train * examples * ts.epochs * folds * 1e-9;
}

// ---- the loop -------------------------------------------------------------------------
typedef struct {
    int trial;      // index in the spec
    int attempts;   // in this run
    double cost;    // estimate (GFLOP)
    double started;
} slot_state;

static int by_cost(const void *a, const void *b, void *costs) {
    const double *c = costs;
    double x = c[*(const int *)a], y = c[*(const int *)b];
    return x < y ? 1 : x > y ? -1 : *(const int *)a - *(const int *)b;
}

static void fmt_secs(char *out, size_t n, double s) {
    if (s < 0 || !isfinite(s)) snprintf(out, n, "?");
    else if (s < 60) snprintf(out, n, "%.0fs", s);
    else if (s < 3600) snprintf(out, n, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(out, n, "%.0fh%02.0fm", floor(s / 3600), floor(fmod(s, 3600) / 60));
}

// The settings of trial t that vary in the sweep, "key=value ...".
static void varying_text(char *out, size_t n, const sweep_spec *s, const sweep_trial *t) {
    size_t o = 0;
    out[0] = 0;
    for (int k = 0; k < s->nvarying && o < n; k++) {
        const char *v = config_get(&t->kv, s->varying[k]);
        o += (size_t)snprintf(out + o, n - o, "%s%s=%s", k ? " " : "", s->varying[k], v ? v : "-");
    }
}

int coord_run(const sweep_spec *spec, executor *ex, const coord_opts *o, petal_err *err) {
    results_store store;
    int st = coord_preflight(spec, o->run, &o->notes, err);  // RUN and the trials' paths, before any write
    if (!st) st = results_store_open(&store, o->run, spec, o->nshards > 0, &o->notes, err);
    if (st) return st;
    int n = spec->n, nq = 0, qhead = 0, ncont = 0;
    size_t nn = (size_t)(n ? n : 1);
    int *queue = petal_malloc(sizeof(int) * nn);
    int *tries = petal_calloc(nn, sizeof *tries);
    double *cost = petal_calloc(nn, sizeof *cost);
    // Early stopping: each trial's maximum budget (train.epochs), the budget of
    // its next (or current) run, which trials are this run's, which are queued
    // or running; continuations of promoted trials (cont) go before new trials.
    const early_stop *es = &spec->early;
    int early = es->kind != EARLY_NONE, paused0 = 0, decided = 0;
    int *max_epochs = petal_calloc(nn, sizeof *max_epochs), *budget = petal_calloc(nn, sizeof *budget);
    int *cont = petal_malloc(sizeof(int) * nn);
    char *active = petal_calloc(nn, 1), *busy = petal_calloc(nn, 1);
    int done0 = 0, failed_kept = 0;
    if (early && o->nshards > 0) {
        results_store_close(&store);
        free(queue), free(tries), free(cost), free(max_epochs), free(budget), free(cont), free(active), free(busy);
        return petal_fail(err, PETAL_EINPUT, "%s: early_stop decides from every trial's results: run it "
                          "as one sweep (one process or mpirun), not in --shard array tasks", spec->path);
    }
    for (int i = 0; i < n; i++) {
        // array task: a stable shard of the trials (by id)
        if (o->nshards > 0 && !sweep_in_shard(spec->trials[i].id, o->shard, o->nshards)) continue;
        active[i] = 1;
        if (early) {
            trial_settings ts;
            max_epochs[i] = trial_settings_resolve(&ts, &spec->trials[i].kv, NULL) ? 1 : ts.epochs;
        }
    }
    // decisions the records call for that a killed sweep did not write
    if (early && (st = early_decide(&store, es, max_epochs, active, &decided, err))) {
        results_store_close(&store);
        free(queue), free(tries), free(cost), free(max_epochs), free(budget), free(cont), free(active), free(busy);
        return st;
    }
    for (int i = 0; i < n; i++) {
        const results_record *r = &store.rows[i];
        if (!active[i]) continue;
        if (r->status == RS_DONE) {
            done0++;
            continue;
        }
        if (r->status == RS_FAILED && !o->retry_failed) {
            failed_kept++;
            continue;
        }
        if (early) {
            budget[i] = r->status == RS_FAILED ? (r->epochs_budget > 0 ? r->epochs_budget
                                                  : early_budget_after(es, max_epochs[i], early_epochs(r)))
                                               : early_next(r, es, max_epochs[i]);
            if (!budget[i]) {
                paused0 += r->status == RS_PAUSED;
                continue;
            }
            if (early_epochs(r) > 0) {  // a promoted (or interrupted) trial goes on first
                cont[ncont++] = i, busy[i] = 1;
                continue;
            }
        }
        cost[i] = coord_estimate(&spec->trials[i]);
        queue[nq++] = i, busy[i] = 1;
    }
    qsort_r(queue, (size_t)nq, sizeof *queue, by_cost, cost);
    slot_state *slot = petal_calloc((size_t)ex->slots, sizeof *slot);
    for (int k = 0; k < ex->slots; k++) slot[k].trial = -1;
    int running = 0, done = 0, failed = 0, stopped = 0, stopping = 0, store_failed = 0;
    double t0 = petal_now(), cost_left = 0, secs_done = 0, cost_done = 0, last_live = 0;
    for (int i = 0; i < nq; i++) cost_left += cost[queue[i]];
    if (o->out && early)
        fprintf(o->out, "early stopping (%s): rungs at %d x %d^k epochs; %d trial(s) paused, %d to go on%s\n",
                es->kind == EARLY_ASHA ? "asha" : "median", es->min_epochs, es->eta, paused0, ncont,
                decided ? " (decisions of an interrupted sweep taken from its records)" : "");
    if (o->out)
        fprintf(o->out, "sweep %s: %d trials, %d done before, %d to run%s%s\n", spec->study, n, done0, nq,
                failed_kept ? ", failed ones kept (--retry-failed reruns them)" : "",
                o->nshards ? " (this shard)" : "");
    while (!st && (qhead < nq || ncont || running)) {
        if (o->stop && *o->stop && !stopping) {
            stopping = 1;
            for (int k = 0; k < ex->slots; k++)
                if (slot[k].trial >= 0) ex->stop(ex, k);
        }
        for (int k = 0; k < ex->slots && !stopping && (ncont || qhead < nq) && !st; k++) {
            if (slot[k].trial >= 0) continue;
            int i;
            if (ncont) {  // promoted trials first, in the order of their promotion
                i = cont[0];
                memmove(cont, cont + 1, sizeof *cont * (size_t)--ncont);
            } else {
                i = queue[qhead++];
            }
            char *settings = coord_settings_text(&spec->trials[i]);
            int attempts = store.rows[i].attempts + 1;
            st = ex->start(ex, k, spec->trials[i].id, settings, budget[i], attempts, err);
            free(settings);
            if (st) break;
            slot[k] = (slot_state){i, ++tries[i], cost[i], petal_now()};
            store.rows[i].attempts = attempts;
            results_store_mark(&store, i, RS_RUNNING);
            running++;
        }
        if (!running) break;
        results_record rec;
        int k = ex->wait(ex, &rec, 0.5);
        if (k >= 0) {
            int i = slot[k].trial;
            slot[k].trial = -1;
            running--;
            const sweep_trial *t = &spec->trials[i];
            if (!rec.config) {
                rec.config = malloc(strlen(t->identity) + 1);
                if (!rec.config) petal_oom(strlen(t->identity) + 1);
                strcpy(rec.config, t->identity);
            }
            rec.attempts = store.rows[i].attempts;
            if (!rec.epochs_budget) rec.epochs_budget = budget[i];  // a crash's record has none
            double secs = petal_now() - slot[k].started;
            int retry = rec.status == RS_FAILED && rec.retryable && !stopping && tries[i] < o->max_attempts;
            if (rec.status == RS_DONE) {
                done++;
                cost_left -= slot[k].cost, cost_done += slot[k].cost, secs_done += secs;
            }
            if (rec.status == RS_FAILED && !retry) {
                failed++;
                cost_left -= slot[k].cost;
            }
            petal_err perr;
            int stored = !results_store_put(&store, i, &rec, &perr);
            if (!stored) {
                // The disk is full or gone: stop the trials in flight (their
                // checkpoints stay), keep what is stored, report, let a rerun go on.
                if (!store_failed) *err = perr;
                store_failed = 1;
                if (!stopping)
                    for (int s2 = 0; s2 < ex->slots; s2++)
                        if (slot[s2].trial >= 0) ex->stop(ex, s2);
                stopping = 1;
                retry = 0;  // not now: the next run picks it up
            }
            busy[i] = 0;
            if (retry) queue[--qhead] = i, busy[i] = 1;  // again, next
            // Early stopping: the decisions this result calls for, then the
            // trials they let go on (this one, or paused ones now in the top).
            // A decision that cannot be written stops the sweep as a record
            // that cannot be stored does; the rerun takes it from the records.
            int changed = 0;
            if (early && stored && !stopping && !retry &&
                early_decide(&store, es, max_epochs, active, &changed, &perr)) {
                if (!store_failed) *err = perr;
                store_failed = stopping = 1;
                for (int s2 = 0; s2 < ex->slots; s2++)
                    if (slot[s2].trial >= 0) ex->stop(ex, s2);
                changed = 0;
            }
            for (int j = 0; changed && j < n; j++) {
                if (!active[j] || busy[j] || store.rows[j].status != RS_STOPPED) continue;
                int b = early_next(&store.rows[j], es, max_epochs[j]);
                if (!b) continue;
                budget[j] = b, busy[j] = 1, cont[ncont++] = j;
                if (j == i || !o->out) continue;
                if (o->live) fprintf(o->out, "\r\033[K");
                fprintf(o->out, "%s promoted from its pause at epoch %d (rung %d), next budget %d\n",
                        spec->trials[j].id, early_epochs(&store.rows[j]),
                        early_rung(es, max_epochs[j], early_epochs(&store.rows[j])), b);
            }
            const results_record *row = &store.rows[i];
            int decided_now = early && stored && rec.status == RS_STOPPED && row->decision[0];
            stopped += rec.status == RS_STOPPED && !decided_now;
            if (decided_now && row->status == RS_PAUSED) cost_left -= slot[k].cost;
            if (o->out && !stored) {
                if (o->live) fprintf(o->out, "\r\033[K");
                fprintf(o->out, "%s %s, but its record could not be stored\n", t->id,
                        results_status_name(rec.status));
            } else if (o->out && decided_now) {
                int e = early_epochs(row);
                char vary[600];
                varying_text(vary, sizeof vary, spec, t);
                if (o->live) fprintf(o->out, "\r\033[K");
                fprintf(o->out, "%s %s at epoch %d (rung %d) valid_acc=%.4f", t->id, row->decision, e,
                        early_rung(es, max_epochs[i], e), row->r.folds[0].history[e - 1].valid_acc);
                if (row->status == RS_STOPPED) fprintf(o->out, ", next budget %d", budget[i]);
                fprintf(o->out, " %s\n", vary);
            } else if (o->out) {
                char vary[600];
                varying_text(vary, sizeof vary, spec, t);
                if (o->live) fprintf(o->out, "\r\033[K");
                if (rec.status == RS_DONE)
                    fprintf(o->out, "%s done test_acc=%.4f %.1fs %s\n", t->id, rec.r.test_acc_mean, secs, vary);
                else
                    fprintf(o->out, "%s %s%s %s: %s\n", t->id, results_status_name(rec.status),
                            retry ? " (retrying)" : "", vary, rec.status == RS_STOPPED ? "checkpointed" : rec.error);
            }
            results_record_free(&rec);
        }
        if (!st && !store_failed) {
            petal_err ferr;
            if (results_store_flush(&store, 0, &ferr)) {  // as above: stop, keep, report
                *err = ferr;
                store_failed = stopping = 1;
                for (int s2 = 0; s2 < ex->slots; s2++)
                    if (slot[s2].trial >= 0) ex->stop(ex, s2);
            }
        }
        if (o->out && o->live && petal_now() - last_live >= 1.0) {
            last_live = petal_now();
            char el[32], eta[32];
            double rate = cost_done > 0 ? secs_done / cost_done : NAN;
            fmt_secs(el, sizeof el, petal_now() - t0);
            fmt_secs(eta, sizeof eta, rate * cost_left / ex->slots);
            fprintf(o->out, "\r\033[K%d done, %d running, %d failed, %d left, %s elapsed, ETA %s", done0 + done,
                    running, failed + failed_kept, nq - qhead + ncont, el, eta);
            fflush(o->out);
        }
    }
    if (o->out && o->live) fprintf(o->out, "\r\033[K");
    petal_err ferr;
    int fst = store_failed ? PETAL_OK : results_store_flush(&store, 1, &ferr);
    if (!st && fst) st = fst, *err = ferr, store_failed = 1;
    if (!st && store_failed) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        st = petal_fail(err, PETAL_EFAIL, "%s; every finished trial is kept and the trials in flight "
                        "were checkpointed: rerun the same command when there is room", why);
    }
    if (!st && o->out) {
        char el[32];
        fmt_secs(el, sizeof el, petal_now() - t0);
        int paused = 0;
        for (int i = 0; i < n; i++) paused += active[i] && store.rows[i].status == RS_PAUSED;
        char pz[48] = "";
        if (early) snprintf(pz, sizeof pz, ", %d paused or stopped early", paused);
        fprintf(o->out, "sweep %s: %d done, %d failed, %d stopped%s, %d left in %s; store %s/results.h5\n",
                spec->study, done0 + done, failed + failed_kept, stopped, pz, nq - qhead + ncont, el, o->run);
    }
    if (!st && stopping) st = petal_fail(err, PETAL_STOPPED, "stopped: in-flight trials checkpointed");
    else if (!st && (failed || failed_kept))
        st = petal_fail(err, PETAL_EFAIL, "%d trial(s) failed (petal results ls %s --status failed)",
                        failed + failed_kept, o->run);
    results_store_close(&store);
    free(queue), free(tries), free(cost), free(slot);
    free(max_epochs), free(budget), free(cont), free(active), free(busy);
    return st;
}

// ---- the local executor ----------------------------------------------------------
static int local_start(executor *ex, int slot, const char *id, const char *settings, int budget,
                       int attempts, petal_err *err) {
    local_exec *le = ex->ctx;
    int st = worker_start(&le->child[slot], id, settings, budget, attempts, &le->wo, err);
    if (!st) le->busy[slot] = 1;
    return st;
}

static int local_wait(executor *ex, results_record *rec, double wait) {
    local_exec *le = ex->ctx;
    double until = petal_now() + wait;
    for (;;) {
        int nbusy = 0, only = -1;
        for (int k = 0; k < ex->slots; k++)
            if (le->busy[k]) nbusy++, only = k;
        if (!nbusy) return -1;
        if (nbusy == 1) {  // sleep in poll() on its pipe
            if (worker_poll(&le->child[only], rec, until - petal_now(), &le->wo)) return le->busy[only] = 0, only;
            return -1;
        }
        for (int k = 0; k < ex->slots; k++)
            if (le->busy[k] && worker_poll(&le->child[k], rec, 0, &le->wo)) return le->busy[k] = 0, k;
        if (petal_now() >= until) return -1;
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
}

static void local_stop(executor *ex, int slot) {
    local_exec *le = ex->ctx;
    if (le->busy[slot]) worker_stop(&le->child[slot]);
}

void local_executor(executor *ex, local_exec *le, int slots, const worker_opts *wo) {
    le->wo = *wo;
    le->child = petal_calloc((size_t)slots, sizeof *le->child);
    le->busy = petal_calloc((size_t)slots, sizeof *le->busy);
    *ex = (executor){slots, local_start, local_wait, local_stop, le};
}

void local_executor_free(local_exec *le) {
    free(le->child), free(le->busy);
}
