// The coordinator's hand-out order: longest expected first, the estimate
// corrected by the measured pace of finished trials. The executor here runs
// each trial as a wait of a scripted length by method (BitFit 60 ms, linear
// 5 ms) on the real loop and the real store, while the estimates (sleep
// drills: their drill.seconds) say the linear trials are the long ones; only
// the measured pace can put the slow trials first.
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/coord.h"
#include "tests/check.h"

typedef struct {
    char order[64][24];  // methods in the order they were started
    int n;
    char id[SWEEP_ID_LEN + 1], method[24];
    double until;
    int busy;
} script;

static int s_start(executor *ex, int slot, const char *id, const char *settings, int budget, int attempts,
                   petal_err *err) {
    (void)slot, (void)budget, (void)attempts, (void)err;
    script *s = ex->ctx;
    const char *m = strstr(settings, "method: \"");
    snprintf(s->method, sizeof s->method, "%s", m && !strncmp(m + 9, "bitfit", 6) ? "slow" : "fast");
    snprintf(s->order[s->n++], sizeof s->order[0], "%s", s->method);
    snprintf(s->id, sizeof s->id, "%s", id);
    s->until = petal_now() + (strcmp(s->method, "slow") ? 0.005 : 0.060);
    s->busy = 1;
    return PETAL_OK;
}

static int s_wait(executor *ex, results_record *rec, double wait) {
    script *s = ex->ctx;
    (void)wait;
    if (!s->busy) return -1;
    while (petal_now() < s->until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    memset(rec, 0, sizeof *rec);
    snprintf(rec->id, sizeof rec->id, "%s", s->id);
    rec->status = RS_DONE;
    rec->r.n_folds = 1;
    rec->r.folds = calloc(1, sizeof *rec->r.folds);
    rec->r.folds[0].fold = 1;
    results_record_stamp(rec);
    s->busy = 0;
    return 0;
}

static void s_stop(executor *ex, int slot) { (void)ex, (void)slot; }

int main(void) {
    char dir[] = "/tmp/petal_test_coord_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    // estimated: one BitFit trial 3 s, the linear ones 2 s, the other BitFit
    // ones 1 s. Without the pace: B9 L1 L2 L3 B1 B2 B3; with it, once B9 and L1
    // have run, the BitFit trials (12x slower per estimated second) go first.
    const char *text =
        "study: pace\n"
        "base: {drill: sleep}\n"
        "grid:\n"
        "  train.seed: [1, 2, 3]\n"
        "  method:\n"
        "    - {method: linear, drill.seconds: 2}\n"
        "    - {method: bitfit, drill.seconds: 1}\n"
        "include:\n"
        "  - {method: bitfit, drill.seconds: 3, train.seed: 9}\n";
    sweep_spec spec;
    petal_err err;
    int st = sweep_spec_parse(&spec, text, "pace.yaml", &err);
    CHECK(st == PETAL_OK, "spec: %s", err.msg);
    if (st) return check_done("coord");
    script s = {0};
    executor ex = {1, 1, s_start, s_wait, s_stop, &s};
    char run[64];
    snprintf(run, sizeof run, "%s/run", dir);
    coord_opts o = {.run = run, .max_attempts = 1};
    st = coord_run(&spec, &ex, &o, &err);
    CHECK(st == PETAL_OK, "sweep: %s", err.msg);
    CHECK(s.n == 7, "7 trials started, not %d", s.n);
    // whichever method goes first, once both have a pace every slow trial
    // left goes before every fast one
    int slow_seen = 0, fast_seen = 0, first_both = -1;
    for (int k = 0; k < s.n && first_both < 0; k++) {
        slow_seen += !strcmp(s.order[k], "slow"), fast_seen += !strcmp(s.order[k], "fast");
        if (slow_seen && fast_seen) first_both = k;
    }
    int ok = first_both >= 0;
    for (int k = first_both + 1, fast_now = 0; ok && k < s.n; k++) {
        if (!strcmp(s.order[k], "fast")) fast_now = 1;
        else if (fast_now) ok = 0;  // a slow trial after a fast one: the pace was ignored
    }
    char seq[256] = "";
    for (int k = 0; k < s.n; k++) strcat(seq, s.order[k]), strcat(seq, " ");
    CHECK(ok, "slow trials first once measured: %s", seq);
    sweep_spec_free(&spec);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return check_done("coord");
}
