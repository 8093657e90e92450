// `petal results check | ls`: a results store checked against its trial records
// (and rebuilt from them), or listed.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "coordinator/preflight.h"
#include "results/store.h"
#include "sweeps/spec.h"

static const char usage[] =
    "usage: petal results check RUN\n"
    "       petal results ls RUN [--status pending|running|done|failed|stopped|paused]\n"
    "check: reads every trial record under RUN/trials (the truth; a damaged one is\n"
    "moved aside and its trial reruns at the next sweep), compares RUN/results.h5\n"
    "with them and rebuilds it from them (also merges the records of array-job shards).\n"
    "Exit 0 when the store is consistent (after the rebuild), 2 when RUN is not a store.\n"
    "ls: one line per trial of RUN/results.h5: id, status, method, test accuracy,\n"
    "epochs, seconds, attempts, and the error of failed trials.\n";

static void print_note(void *ctx, const char *line) { fprintf(ctx, "petal results: %s\n", line); }

static int check(const char *run) {
    char path[4200];
    snprintf(path, sizeof path, "%s/spec.yaml", run);
    sweep_spec spec;
    petal_err err;
    int st = sweep_spec_load(&spec, path, &err);
    if (st) {
        fprintf(stderr, "petal results check: %s (is %s a sweep's RUN folder?)\n", err.msg, run);
        return 2;
    }
    // a results.h5 of another format is not replaced (its notes: the message below)
    if ((st = coord_preflight_run(run, NULL, &err))) {
        fprintf(stderr, "petal results check: %s\n", err.msg);
        sweep_spec_free(&spec);
        return st;
    }
    results_table old;
    int have_old = !results_table_read(&old, run, &err);
    if (!have_old) printf("%s\n", err.msg);
    results_store s;
    petal_notes notes = {print_note, stdout};
    if ((st = results_store_open(&s, run, &spec, 0, &notes, &err))) {
        fprintf(stderr, "petal results check: %s\n", err.msg);
        if (have_old) results_table_free(&old);
        sweep_spec_free(&spec);
        return st;
    }
    int differ = 0, records = 0;
    for (int i = 0; i < spec.n; i++) {
        const results_record *r = &s.rows[i];
        records += r->status != RS_PENDING;
        if (!have_old) continue;
        const results_row *o = NULL;
        for (int j = 0; j < old.n && !o; j++)
            if (!strcmp(old.rows[j].id, r->id)) o = &old.rows[j];
        const char *want = results_status_name(r->status);
        int same = o && (!strcmp(o->status, want) || (!strcmp(o->status, "running") && r->status == RS_PENDING));
        if (same && r->status == RS_DONE)
            same = o->test_acc == r->r.test_acc_mean && o->attempts == r->attempts;
        if (!same) {
            differ++;
            if (differ <= 10)
                printf("trial %s: results.h5 says %s, its record %s\n", r->id, o ? o->status : "nothing",
                       r->status == RS_PENDING ? "does not exist" : want);
        }
    }
    st = results_store_flush(&s, 1, &err);
    if (st) fprintf(stderr, "petal results check: %s\n", err.msg);
    else if (!have_old || differ)
        printf("results.h5 rebuilt from %d trial records (%d of %d rows differed); %d orphan record(s) kept\n",
               records, differ, spec.n, s.n_orphans);
    else
        printf("results.h5 matches its %d trial records (%d trials in the spec)\n", records, spec.n);
    results_store_close(&s);
    if (have_old) results_table_free(&old);
    sweep_spec_free(&spec);
    return st;
}

static int ls(const char *run, const char *status) {
    results_table t;
    petal_err err;
    int st = results_table_read(&t, run, &err);
    if (st) {
        fprintf(stderr, "petal results ls: %s\n", err.msg);
        return st;
    }
    printf("%-16s %-8s %-28s %8s %6s %8s %3s %s\n", "id", "status", "method", "test_acc", "epochs",
           "seconds", "att", "error");
    int shown = 0;
    for (int i = 0; i < t.n; i++) {
        const results_row *r = &t.rows[i];
        if (status && strcmp(r->status, status)) continue;
        shown++;
        char acc[16];
        if (isnan(r->test_acc)) snprintf(acc, sizeof acc, "-");
        else snprintf(acc, sizeof acc, "%.4f", r->test_acc);
        printf("%-16s %-8s %-28.28s %8s %6lld %8.1f %3lld %s\n", r->id, r->status,
               r->label[0] ? r->label : r->method, acc, r->epochs, r->seconds, r->attempts,
               r->error ? r->error : "");
    }
    if (status && !shown) printf("(no trial is %s)\n", status);
    results_table_free(&t);
    return 0;
}

int cmd_results(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *run = NULL, *status = NULL;
    args a = {argc, argv, 2, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        if (args_flag(&a, "--status", &status)) {
            if (status && results_status_parse(status) < 0) {
                fprintf(stderr, "petal results: --status expects pending, running, done, failed, "
                                "stopped or paused, got '%s'\n", status);
                a.bad = 1;
            }
        } else if (argv[a.i][0] != '-' && !run) {
            run = argv[a.i];
        } else {
            args_unknown(&a, "results");
        }
    }
    if (a.bad) return 2;
    if (!run) {
        fprintf(stderr, "petal results %s: RUN is required\n", argv[1]);
        return 2;
    }
    if (!strcmp(argv[1], "check")) return check(run);
    if (!strcmp(argv[1], "ls")) return ls(run, status);
    fprintf(stderr, "petal results: unknown action '%s' (check or ls)\n", argv[1]);
    return 2;
}
