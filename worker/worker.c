// ==== One trial per child process: start, poll, stop; drills ======================
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <string.h>
#include <sys/file.h>
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

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w, n -= (size_t)w;
    }
}

static void child_main(int wfd, const char *id, const char *settings, int budget, int attempts,
                       const worker_opts *o) {
    char dir[4200], log[4300];
    petal_err err;
    results_record rec = {0};
    snprintf(rec.id, sizeof rec.id, "%s", id);
    rec.attempts = attempts;
    rec.epochs_budget = budget;
    int st = results_trial_dir(dir, sizeof dir, o->run, id, &err);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    int lfd = st ? -1 : open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    // the log stays flocked while the trial lives: `petal status` counts a
    // trial as running exactly when someone holds it (no stale pid files)
    if (lfd >= 0) flock(lfd, LOCK_EX | LOCK_NB), dup2(lfd, 2), close(lfd);
    setvbuf(stderr, NULL, _IOLBF, 0);
    // the parent's handlers (MPI's backtrace printer, the sweep's stop flag) are not the trial's
    int dfl[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGCHLD, SIGPIPE};
    for (size_t i = 0; i < sizeof dfl / sizeof dfl[0]; i++) signal(dfl[i], SIG_DFL);
    struct sigaction sa = {0};
    sa.sa_handler = on_child_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    config_kv kv = {0};
    if (!st) st = config_parse_yaml(&kv, settings, "trial settings", &err);
    rec.config = st ? NULL : trial_identity(&kv, 0);
    trial_settings ts;
    if (!st) st = trial_settings_resolve(&ts, &kv, &err);
    petal_set_threads(o->threads ? o->threads : 0);
    trial_opts opt = {.ckpt_dir = st ? NULL : dir, .share_dir = o->share_dir, .stop = &child_stop,
                      .stop_after_epochs = budget, .on_epoch = print_epoch,
                      .notes = {print_line, NULL}};
    fprintf(stderr, "== trial %s attempt %d (pid %ld)\n", id, attempts, (long)getpid());
    if (!st && ts.drill) st = run_drill(&rec.r, &ts, rec.config, &opt, &err);
    else if (!st) st = trial_run(&rec.r, &kv, &opt, &err);
    rec.status = st == PETAL_OK ? RS_DONE : st == PETAL_STOPPED ? RS_STOPPED : RS_FAILED;
    if (st && st != PETAL_STOPPED) snprintf(rec.error, sizeof rec.error, "%s", err.msg);
    if (st) fprintf(stderr, "== %s: %s\n", results_status_name(rec.status), err.msg);
    results_record_stamp(&rec);
    char *buf;
    size_t len;
    results_record_pack(&buf, &len, &rec);
    write_all(wfd, buf, len);
    _exit(st == PETAL_OK ? 0 : st == PETAL_STOPPED ? 75 : st == PETAL_EINPUT ? 2 : 1);
}

// ---- the parent ---------------------------------------------------------------------
int worker_start(worker_child *c, const char *id, const char *settings, int epochs_budget,
                 int attempts, const worker_opts *o, petal_err *err) {
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->attempts = attempts;
    char dir[4100];
    int st = results_trial_dir(dir, sizeof dir, o->run, id, err);
    if (st) return st;
    snprintf(c->log, sizeof c->log, "%s/log.txt", dir);
    int p[2];
    if (pipe(p)) return petal_fail(err, PETAL_EFAIL, "pipe: %s", strerror(errno));
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]), close(p[1]);
        return petal_fail(err, PETAL_EFAIL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(p[0]);
        child_main(p[1], id, settings, epochs_budget, attempts, o);
    }
    close(p[1]);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    c->pid = pid;
    c->fd = p[0];
    c->started = petal_now();
    return PETAL_OK;
}

void worker_stop(worker_child *c) {
    if (c->pid > 0 && !c->stop_sent) kill(c->pid, SIGUSR1);
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

int worker_poll(worker_child *c, results_record *rec, double wait, const worker_opts *o) {
    double until = petal_now() + wait;
    int status = 0;
    for (;;) {
        if (c->fd >= 0) {  // drain the pipe (a big record must not block the child)
            double left = until - petal_now();
            struct pollfd pf = {c->fd, POLLIN, 0};
            int r = poll(&pf, 1, left > 0 ? (int)(left * 1000) + 1 : 0);
            if (r < 0 && errno == EINTR) return 0;  // a signal: let the caller look at it
            if (r > 0) {
                c->buf = petal_grow(c->buf, &c->cap, c->n + 65536, 1);
                ssize_t got = read(c->fd, c->buf + c->n, c->cap - c->n);
                if (got > 0) c->n += (size_t)got;
                if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
                    close(c->fd);
                    c->fd = -1;
                }
            }
        }
        pid_t w = c->fd < 0 ? waitpid(c->pid, &status, WNOHANG) : 0;
        if (w == c->pid) break;
        if (o->timeout > 0 && !c->timed_out && petal_now() - c->started > o->timeout) {
            kill(c->pid, SIGKILL);  // its checkpoint of the last epoch stays
            c->timed_out = 1;
        }
        if (petal_now() >= until) return 0;
        if (c->fd < 0) {  // pipe closed, child not yet reaped: it is exiting, a short wait
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        continue;
    }
    // finished: its record, or why there is none
    petal_err err;
    int have = c->n && !results_record_unpack(rec, c->buf, c->n, &err);
    free(c->buf);
    c->buf = NULL;
    c->pid = 0;
    if (have && !c->timed_out) return 1;
    if (have) results_record_free(rec);
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
