// ==== One trial per child process: start, poll, stop; drills ======================
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <string.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/settings.h"
#include "core/threads.h"
#include "results/store.h"

// ---- the child ----------------------------------------------------------------------
static volatile sig_atomic_t child_stop;
static void on_child_stop(int sig) {
    (void)sig;
    child_stop = 1;
}

static void print_line(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

static void print_epoch(void *ctx, int fold, int epoch, const epoch_record *h) {
    (void)ctx;
    fprintf(stderr,
            "fold %d epoch %d train_loss=%.4f train_acc=%.4f valid_loss=%.4f valid_acc=%.4f "
            "lr=%.3g seconds=%.4f\n",
            fold, epoch, h->train_loss, h->train_acc, h->valid_loss, h->valid_acc, h->lr, h->seconds);
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR && !child_stop) {
    }
}

// A drill: a trial that does no training (tests and benchmarks of the sweep
// machinery). noop and sleep finish with a deterministic accuracy from the
// trial's identity; curve scripts valid_acc(epoch) = q (1 - e^(-epoch / tau))
// with q in [0.3, 0.9) and tau in [0.5, 6) from the identity, so curves cross
// (early-stopping tests), resumes from its checkpoint (epochs done) and honours
// epoch budgets as a trainer does; segv and abort crash.
static int run_drill(trial_record *r, const trial_settings *ts, const char *identity,
                     const trial_opts *opt, petal_err *err) {
    static const char *const names[] = {"none", "noop", "sleep", "segv", "abort", "curve"};
    uint64_t h = XXH3_64bits(identity, strlen(identity));
    double q = 0.3 + 0.6 * (double)(h % 10000) / 10000.0;
    double tau = 0.5 + 5.5 * (double)((h >> 32) % 10000) / 10000.0;
    if (!strcmp(names[ts->drill], "segv")) raise(SIGSEGV);
    if (!strcmp(names[ts->drill], "abort")) abort();
    r->n_folds = 1;
    r->folds = petal_calloc(1, sizeof *r->folds);
    fold_record *f = &r->folds[0];
    f->fold = ts->fold ? ts->fold : 1;
    snprintf(r->label, sizeof r->label, "drill %s", names[ts->drill]);
    if (!strcmp(names[ts->drill], "sleep")) sleep_s(ts->drill_seconds);
    int epochs = !strcmp(names[ts->drill], "curve") ? ts->epochs : 0;
    f->history = petal_calloc((size_t)(epochs ? epochs : 1), sizeof *f->history);
    // a curve resumes where its checkpoint (epochs done) left it
    char ck[4400], tmp[4500];
    int start = 0;
    if (opt->ckpt_dir) {
        snprintf(ck, sizeof ck, "%s/curve.txt", opt->ckpt_dir);
        snprintf(tmp, sizeof tmp, "%s.tmp", ck);
        FILE *cf = fopen(ck, "r");
        if (cf && fscanf(cf, "%d", &start) != 1) start = 0;
        if (cf) fclose(cf);
        if (start < 0 || start > epochs) start = 0;
    }
    f->epochs = start;
    for (int e = 0; e < epochs; e++) {
        double acc = q * (1.0 - exp(-(e + 1) / tau));
        f->history[e] = (epoch_record){1.0 - acc, acc, 1.0 - acc, acc, 0.0, ts->drill_seconds};
        if (e < start) continue;
        if (child_stop || (opt->stop_after_epochs > 0 && e >= opt->stop_after_epochs)) {
            f->status = r->status = TRIAL_STOPPED;  // resumed at its budget: nothing to run
            return petal_fail(err, PETAL_STOPPED, "fold %d stopped at epoch %d", f->fold, e);
        }
        sleep_s(ts->drill_seconds);
        f->epochs = e + 1;
        if (opt->ckpt_dir) {  // written then renamed, as a checkpoint is
            FILE *cf = fopen(tmp, "w");
            if (cf) fprintf(cf, "%d\n", e + 1), fclose(cf), rename(tmp, ck);
        }
        if (opt->on_epoch) opt->on_epoch(opt->ctx, f->fold, e + 1, &f->history[e]);
        if ((child_stop || (opt->stop_after_epochs > 0 && e + 1 >= opt->stop_after_epochs)) &&
            e + 1 < epochs) {
            f->status = r->status = TRIAL_STOPPED;
            return petal_fail(err, PETAL_STOPPED, "fold %d stopped at epoch %d", f->fold, e + 1);
        }
    }
    f->epochs = epochs;
    if (child_stop && !epochs) {
        f->status = r->status = TRIAL_STOPPED;
        return petal_fail(err, PETAL_STOPPED, "drill stopped");
    }
    for (int e = 0; e < epochs; e++)
        if (f->history[e].valid_acc > f->best_valid_acc) f->best_valid_acc = f->history[e].valid_acc, f->best_epoch = e + 1;
    f->test_acc = epochs ? f->best_valid_acc : q;
    r->test_acc_mean = f->test_acc;
    r->best_valid_acc_mean = f->best_valid_acc;
    r->trainable = 1, r->total = 1;
    return PETAL_OK;
}

// ---- the runner -----------------------------------------------------------------
// A trial message: this header, then len bytes "id\0dir\0log\0settings\0".
typedef struct {
    int32_t budget, attempts;
    uint32_t len;
} trial_msg;

// Runs one trial with its output in log; returns its record.
static void run_one(results_record *rec, const char *id, const char *dir, const char *log,
                    const char *settings, int budget, int attempts, const worker_opts *o) {
    petal_err err;
    memset(rec, 0, sizeof *rec);
    snprintf(rec->id, sizeof rec->id, "%s", id);
    rec->attempts = attempts;
    rec->epochs_budget = budget;
    int st = PETAL_OK;
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    // the log stays flocked while the trial runs: `petal status` counts a
    // trial as running exactly when someone holds it (no stale pid files)
    if (lfd >= 0) flock(lfd, LOCK_EX | LOCK_NB), dup2(lfd, 2), close(lfd);
    child_stop = 0;  // a stop request belongs to the trial it was sent to
    // the trial's peak memory from here (VmHWM, which trial_run reports)
    int cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (cr >= 0) (void)!write(cr, "5", 1), close(cr);
    config_kv kv = {0};
    st = config_parse_yaml(&kv, settings, "trial settings", &err);
    rec->config = st ? NULL : trial_identity(&kv, 0);
    trial_settings ts;
    if (!st) st = trial_settings_resolve(&ts, &kv, &err);
    petal_set_threads(o->threads ? o->threads : 0);
    trial_opts opt = {.ckpt_dir = st ? NULL : dir, .share_dir = o->share_dir, .stop = &child_stop,
                      .stop_after_epochs = budget, .on_epoch = print_epoch,
                      .notes = {print_line, NULL}};
    fprintf(stderr, "== trial %s attempt %d (pid %ld)\n", id, attempts, (long)getpid());
    if (!st && ts.drill) st = run_drill(&rec->r, &ts, rec->config, &opt, &err);
    else if (!st) st = trial_run(&rec->r, &kv, &opt, &err);
    config_free(&kv);
    rec->status = st == PETAL_OK ? RS_DONE : st == PETAL_STOPPED ? RS_STOPPED : RS_FAILED;
    if (st && st != PETAL_STOPPED) snprintf(rec->error, sizeof rec->error, "%s", err.msg);
    if (st) fprintf(stderr, "== %s: %s\n", results_status_name(rec->status), err.msg);
    results_record_stamp(rec);
}

// The runner: a child process that runs the trials the parent sends, one at a
// time, each record back as its length and packed bytes. Reused while its
// trials end normally (a fork and its page faults cost most of a short
// trial's millisecond); a trial that kills it (crash, out-of-memory kill,
// timeout) is recorded by the parent, which starts a new runner for the next.
static void runner_main(int cmd, int out, const worker_opts *o, pid_t parent) {
    // dies with its parent (kill -9 of a sweep leaves no trial running on)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    // the parent's handlers (MPI's backtrace printer, the sweep's stop flag) are not the trial's
    int dfl[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGCHLD, SIGPIPE};
    for (size_t i = 0; i < sizeof dfl / sizeof dfl[0]; i++) signal(dfl[i], SIG_DFL);
    struct sigaction sa = {0};
    sa.sa_handler = on_child_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stderr, NULL, _IOLBF, 0);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    for (trial_msg m; !petal_read_full(cmd, &m, sizeof m);) {
        if (m.len < 4 || m.len > 1u << 26) _exit(2);
        char *text = petal_malloc(m.len);
        if (petal_read_full(cmd, text, m.len) || text[m.len - 1]) _exit(2);
        const char *id = text, *dir = id + strlen(id) + 1, *log = dir + strlen(dir) + 1;
        const char *settings = log + strlen(log) + 1;
        results_record rec;
        run_one(&rec, id, dir, log, settings, m.budget, m.attempts, o);
        free(text);
        char *buf;
        size_t len;
        results_record_pack(&buf, &len, &rec);
        uint64_t n = len;
        int sent = !petal_write_full(out, &n, sizeof n) && !petal_write_full(out, buf, len);
        free(buf);
        results_record_free(&rec);
        if (!sent) _exit(1);  // the parent is gone
        if (null >= 0) dup2(null, 2);  // releases the log's lock: the trial is over
        malloc_trim(0);  // give the trial's memory back before the next
    }
    _exit(0);  // the parent closed the pipe: the sweep is over
}

// ---- the parent ---------------------------------------------------------------------
static int runner_spawn(worker_child *c, const worker_opts *o, petal_err *err) {
    int cmd[2], out[2];
    if (pipe2(cmd, O_CLOEXEC)) return petal_fail(err, PETAL_EFAIL, "pipe: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC)) {
        int e = errno;
        close(cmd[0]), close(cmd[1]);
        return petal_fail(err, PETAL_EFAIL, "pipe: %s", strerror(e));
    }
    fflush(stdout), fflush(stderr);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        int e = errno;
        close(cmd[0]), close(cmd[1]), close(out[0]), close(out[1]);
        return petal_fail(err, PETAL_EFAIL, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(cmd[1]), close(out[0]);
        runner_main(cmd[0], out[1], o, parent);
    }
    close(cmd[0]), close(out[1]);
    c->pid = pid, c->cmd = cmd[1], c->fd = out[0];
    return PETAL_OK;
}

// Ends the runner (its pipe closed, then reaped) after the trial it may run.
static void runner_end(worker_child *c, int *status) {
    if (c->cmd >= 0) close(c->cmd);
    if (c->fd >= 0) close(c->fd);
    c->cmd = c->fd = -1;
    int st = 0;
    while (c->pid > 0 && waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (status) *status = st;
    c->pid = 0;
}

void worker_init(worker_child *c) {
    memset(c, 0, sizeof *c);
    c->cmd = c->fd = -1;
}

void worker_close(worker_child *c) {
    runner_end(c, NULL);
    free(c->buf);
    c->buf = NULL;
    c->n = c->cap = 0;
}

int worker_start(worker_child *c, const char *id, const char *settings, int epochs_budget,
                 int attempts, const worker_opts *o, petal_err *err) {
    snprintf(c->id, sizeof c->id, "%s", id);
    c->attempts = attempts;
    c->n = 0, c->stop_sent = c->timed_out = 0;
    char dir[4100];
    int st = results_trial_dir(dir, sizeof dir, o->run, id, err);
    if (st) return st;
    snprintf(c->log, sizeof c->log, "%s/log.txt", dir);
    if (c->pid <= 0 && (st = runner_spawn(c, o, err))) return st;
    size_t nid = strlen(id) + 1, ndir = strlen(dir) + 1, nlog = strlen(c->log) + 1, ns = strlen(settings) + 1;
    trial_msg m = {epochs_budget, attempts, (uint32_t)(nid + ndir + nlog + ns)};
    char *msg = petal_malloc(sizeof m + m.len);
    memcpy(msg, &m, sizeof m);
    char *at = msg + sizeof m;
    memcpy(at, id, nid), memcpy(at + nid, dir, ndir), memcpy(at + nid + ndir, c->log, nlog);
    memcpy(at + nid + ndir + nlog, settings, ns);
    // an idle runner reads at once; a dead one (a pipe error) is replaced once
    sig_t old = signal(SIGPIPE, SIG_IGN);
    if (petal_write_full(c->cmd, msg, sizeof m + m.len)) {
        runner_end(c, NULL);
        st = runner_spawn(c, o, err);
        if (!st && petal_write_full(c->cmd, msg, sizeof m + m.len))
            st = petal_fail(err, PETAL_EFAIL, "cannot reach the trial runner: %s", strerror(errno));
    }
    signal(SIGPIPE, old);
    free(msg);
    if (st) return st;
    c->started = petal_now();
    c->busy = 1;
    return PETAL_OK;
}

void worker_stop(worker_child *c) {
    if (c->busy && c->pid > 0 && !c->stop_sent) kill(c->pid, SIGUSR1);
    c->stop_sent = 1;
}

// The last non-empty line of the child's log (what it said before it died).
static void last_line(char *out, size_t n, const char *path) {
    out[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char buf[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f), from = size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    while (got && (buf[got - 1] == '\n' || buf[got - 1] == '\r')) buf[--got] = 0;
    char *nl = strrchr(buf, '\n');
    snprintf(out, n, "%.500s", nl ? nl + 1 : buf);
}

// The record the runner sent complete in c->buf (its length first): its size, else 0.
static size_t record_bytes(const worker_child *c) {
    uint64_t n;
    if (c->n < sizeof n) return 0;
    memcpy(&n, c->buf, sizeof n);
    return c->n - sizeof n >= n ? (size_t)n : 0;
}

int worker_poll(worker_child *c, results_record *rec, double wait, const worker_opts *o) {
    if (!c->busy) return 0;
    double until = petal_now() + wait;
    int status = 0;
    size_t len = 0;
    for (;;) {
        // the record, read as it comes (a big one must not block the runner)
        double left = until - petal_now();
        struct pollfd pf = {c->fd, POLLIN, 0};
        int r = poll(&pf, 1, left > 0 ? (int)(left * 1000) + 1 : 0);
        if (r < 0 && errno == EINTR) return 0;  // a signal: let the caller look at it
        if (r > 0) {
            c->buf = petal_grow(c->buf, &c->cap, c->n + 65536, 1);
            ssize_t got = read(c->fd, c->buf + c->n, c->cap - c->n);
            if (got > 0) c->n += (size_t)got;
            if ((len = record_bytes(c))) break;
            // the pipe closed without a whole record: the runner died (a
            // crash, a kill, the timeout below); reap it for its status
            if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
                runner_end(c, &status);
                break;
            }
        }
        if (o->timeout > 0 && !c->timed_out && petal_now() - c->started > o->timeout) {
            kill(c->pid, SIGKILL);  // its checkpoint of the last epoch stays
            c->timed_out = 1;
        }
        if (petal_now() >= until) return 0;
    }
    c->busy = 0;
    // finished: its record, or why there is none
    petal_err err;
    int have = len && !results_record_unpack(rec, c->buf + sizeof(uint64_t), len, &err);
    int extra = c->n > sizeof(uint64_t) + len;  // more than one record: not a runner to trust
    c->n = 0;
    // a failed trial may leave state behind (open files, a damaged heap): a fresh runner next
    if (have && (rec->status == RS_FAILED || extra || c->timed_out)) runner_end(c, NULL);
    if (have) return 1;
    if (c->pid > 0) runner_end(c, &status);
    memset(rec, 0, sizeof *rec);
    snprintf(rec->id, sizeof rec->id, "%s", c->id);
    rec->status = RS_FAILED;
    rec->attempts = c->attempts;
    rec->retryable = 1;
    char line[600];
    last_line(line, sizeof line, c->log);
    if (c->timed_out)
        snprintf(rec->error, sizeof rec->error, "timed out after %.0f s (--trial-timeout); last output: %s",
                 o->timeout, line);
    else if (WIFSIGNALED(status))
        snprintf(rec->error, sizeof rec->error, "crashed: signal %d (%s)%s; last output: %s",
                 WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WTERMSIG(status) == SIGKILL ? ", killed from outside (out of memory?)" : "", line);
    else
        snprintf(rec->error, sizeof rec->error, "exited with status %d without a record; last output: %s",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, line);
    results_record_stamp(rec);
    return 1;
}
