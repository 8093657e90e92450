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
    int was;        // the row's status before it was handed out (back to it if handed back)
} slot_state;

// Measured pace: seconds per estimated GFLOP of the finished trials, per
// method and over all. It corrects what the FLOP estimate gets wrong (linear
// probing trains its head on cached encoder outputs, bf16 GEMMs run 2-3x
// faster, small models are bound by memory, not FLOPs): the queued trials are
// re-ordered by expected seconds as the rates settle, and the ETA uses them.
#define PACE_METHODS 32
#define QUEUE_S 0.25  // seconds: trials shorter than this may wait in a worker's queue slot
typedef struct {
    char name[PACE_METHODS][32];
    int n;                                    // methods seen ([PACE_METHODS]: the rest)
    double secs[PACE_METHODS + 2], cost[PACE_METHODS + 2];  // [PACE_METHODS + 1]: all
    int done[PACE_METHODS + 2];
} pace;

static int pace_method(pace *p, const sweep_trial *t) {
    const char *m = config_get(&t->kv, "method");
    m = m ? m : "";
    for (int k = 0; k < p->n; k++)
        if (!strcmp(p->name[k], m)) return k;
    if (p->n == PACE_METHODS) return PACE_METHODS;
    snprintf(p->name[p->n], sizeof p->name[0], "%s", m);
    return p->n++;
}

// Seconds a trial of method m and estimated cost is expected to take (in
// estimate units while nothing has finished).
static double pace_expect(const pace *p, int m, double cost) {
    int all = PACE_METHODS + 1;
    if (p->done[m] && p->cost[m] > 0) return cost * p->secs[m] / p->cost[m];
    if (p->done[all] && p->cost[all] > 0) return cost * p->secs[all] / p->cost[all];
    return cost;
}

// Records a finished trial; 1 when its method's rate is worth re-ordering for
// (its 1st, 2nd, 4th, 8th, ... finished trial: n log n sorts in all).
static int pace_add(pace *p, int m, double cost, double secs) {
    if (cost <= 0) return 0;
    int all = PACE_METHODS + 1;
    p->secs[m] += secs, p->cost[m] += cost, p->done[m]++;
    p->secs[all] += secs, p->cost[all] += cost, p->done[all]++;
    return (p->done[m] & (p->done[m] - 1)) == 0;
}

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
    pace pc = {0};
    int *meth = petal_calloc(nn, sizeof *meth);
    double *expect = petal_calloc(nn, sizeof *expect);  // seconds, as the pace says
    for (int i = 0; i < n; i++) meth[i] = pace_method(&pc, &spec->trials[i]), expect[i] = cost[i];
    qsort_r(queue, (size_t)nq, sizeof *queue, by_cost, expect);
    slot_state *slot = petal_calloc((size_t)ex->slots, sizeof *slot);
    for (int k = 0; k < ex->slots; k++) slot[k].trial = -1;
    int running = 0, done = 0, failed = 0, stopped = 0, stopping = 0, store_failed = 0, handed_back = 0;
    double t0 = petal_now(), last_live = 0;
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
            // A worker's queue slot takes only a trial its kind is measured to
            // finish in under QUEUE_S: it hides the hand-out's round trip for
            // short trials, and never holds a long one back from an idle worker.
            if (k >= ex->workers && (ncont || !pc.done[meth[queue[qhead]]] ||
                                     pace_expect(&pc, meth[queue[qhead]], cost[queue[qhead]]) > QUEUE_S))
                continue;
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
            slot[k] = (slot_state){i, ++tries[i], cost[i], petal_now(), store.rows[i].status};
            store.rows[i].attempts = attempts;
            results_store_mark(&store, i, RS_RUNNING);
            running++;
        }
        if (!running) break;
        results_record rec;
        int k = ex->wait(ex, &rec, 0.5);
        if (k >= 0 && rec.status == RS_PENDING) {  // a queued trial handed back unstarted (a stop)
            int i = slot[k].trial;
            slot[k].trial = -1;
            running--;
            store.rows[i].attempts--, tries[i]--, busy[i] = 0, handed_back++;
            results_store_mark(&store, i, slot[k].was);
            results_record_free(&rec);
            continue;
        }
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
                if (pace_add(&pc, meth[i], slot[k].cost, secs) && qhead < nq) {  // re-order what waits
                    for (int q = qhead; q < nq; q++) expect[queue[q]] = pace_expect(&pc, meth[queue[q]], cost[queue[q]]);
                    qsort_r(queue + qhead, (size_t)(nq - qhead), sizeof *queue, by_cost, expect);
                }
            }
            failed += rec.status == RS_FAILED && !retry;
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
            // what is queued, and what the running trials have left, over the slots
            double left = 0, now = petal_now();
            for (int q = qhead; q < nq; q++) left += pace_expect(&pc, meth[queue[q]], cost[queue[q]]);
            for (int k = 0; k < ex->slots; k++)
                if (slot[k].trial >= 0)
                    left += fmax(pace_expect(&pc, meth[slot[k].trial], slot[k].cost) - (now - slot[k].started), 0);
            fmt_secs(el, sizeof el, now - t0);
            fmt_secs(eta, sizeof eta, pc.done[PACE_METHODS + 1] ? left / ex->workers : NAN);
            fprintf(o->out, "\r\033[K%d done, %d running, %d failed, %d left, %s elapsed, ETA %s", done0 + done,
                    running, failed + failed_kept, nq - qhead + ncont + handed_back, el, eta);
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
                spec->study, done0 + done, failed + failed_kept, stopped, pz, nq - qhead + ncont + handed_back, el, o->run);
    }
    if (!st && stopping) st = petal_fail(err, PETAL_STOPPED, "stopped: in-flight trials checkpointed");
    else if (!st && (failed || failed_kept))
        st = petal_fail(err, PETAL_EFAIL, "%d trial(s) failed (petal results ls %s --status failed)",
                        failed + failed_kept, o->run);
    results_store_close(&store);
    free(queue), free(tries), free(cost), free(slot), free(meth), free(expect);
    free(max_epochs), free(budget), free(cont), free(active), free(busy);
    return st;
}

// ---- the local executor ----------------------------------------------------------
static int local_start(executor *ex, int slot, const char *id, const char *settings, int budget,
                       int attempts, petal_err *err) {
    local_exec *le = ex->ctx;
    (void)slot;
    return worker_start(&le->child, id, settings, budget, attempts, &le->wo, err);
}

static int local_wait(executor *ex, results_record *rec, double wait) {
    local_exec *le = ex->ctx;
    return le->child.busy && worker_poll(&le->child, rec, wait, &le->wo) ? 0 : -1;  // sleeps in poll()
}

static void local_stop(executor *ex, int slot) {
    local_exec *le = ex->ctx;
    (void)slot;
    worker_stop(&le->child);
}

void local_executor(executor *ex, local_exec *le, const worker_opts *wo) {
    memset(le, 0, sizeof *le);
    le->wo = *wo;
    worker_init(&le->child);
    *ex = (executor){1, 1, local_start, local_wait, local_stop, le};
}

void local_executor_close(local_exec *le) { worker_close(&le->child); }
