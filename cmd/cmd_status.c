// `petal status RUN`: how far a sweep is (done / running / failed / left) and
// the SLURM jobs behind it; safe while the sweep runs (it only reads: records
// and results.h5 are replaced by rename, never rewritten in place).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "results/store.h"
#include "sweeps/spec.h"

static const char usage[] =
    "usage: petal status RUN [--left] [--shard K/N]\n"
    "Counts the trials of the sweep in RUN: done, running (a trial process holds its\n"
    "log), failed, and left (not started, or checkpointed and waiting to resume), from\n"
    "the trial records RUN/trials/*/record.bin and the spec in RUN; then the SLURM jobs\n"
    "behind RUN (from RUN/slurm-jobs, which `petal slurm` jobs write) with their state\n"
    "from squeue when it is there. Works while a sweep runs.\n"
    "  --left       print only the number of trials left (batch scripts use it)\n"
    "  --shard K/N  count only array shard K of N\n"
    "Exit 0, 2 when RUN is not a sweep's folder.\n";

// True when a trial process holds RUN/trials/<id>/log.txt (worker/worker.c
// keeps it flocked for the trial's life; the lock dies with the process).
static int trial_running(const char *run, const char *id) {
    char path[4400];
    snprintf(path, sizeof path, "%s/trials/%s/log.txt", run, id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int busy = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return busy;
}

// The trial ids of RUN: its spec expanded, else the rows of results.h5.
static int run_ids(char (**ids)[SWEEP_ID_LEN + 1], int *n, char *study, size_t ns, const char *run,
                   petal_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/spec.yaml", run);
    sweep_spec spec;
    petal_err serr;
    if (!sweep_spec_load(&spec, path, &serr)) {
        *n = spec.n;
        *ids = petal_calloc((size_t)(spec.n ? spec.n : 1), sizeof **ids);
        for (int i = 0; i < spec.n; i++) memcpy((*ids)[i], spec.trials[i].id, SWEEP_ID_LEN + 1);
        snprintf(study, ns, "%s", spec.study);
        sweep_spec_free(&spec);
        return PETAL_OK;
    }
    results_table t;
    petal_err terr;
    if (results_table_read(&t, run, &terr)) {
        // a job submitted by `petal slurm` that has not started yet: no trials known
        snprintf(path, sizeof path, "%s/slurm-jobs", run);
        if (access(path, F_OK) == 0) {
            *n = 0;
            *ids = NULL;
            snprintf(study, ns, "? (no sweep has started in it yet)");
            return PETAL_OK;
        }
        return petal_fail(err, PETAL_EINPUT, "%s: not a sweep's folder (%.400s; %.400s)", run, serr.msg,
                          terr.msg);
    }
    *n = t.n;
    *ids = petal_calloc((size_t)(t.n ? t.n : 1), sizeof **ids);
    for (int i = 0; i < t.n; i++) memcpy((*ids)[i], t.rows[i].id, SWEEP_ID_LEN + 1);
    snprintf(study, ns, "%s", t.study ? t.study : "?");
    results_table_free(&t);
    return PETAL_OK;
}

// Runs squeue for one job id; prints its lines. Returns how many it printed.
static int squeue_job(const char *id) {
    int p[2];
    if (pipe(p)) return 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        dup2(p[1], 1);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 2);
        close(p[0]), close(p[1]);
        execlp("squeue", "squeue", "-h", "-j", id, "-o", "%i %T %M of %l %R", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    char line[1024];
    int lines = 0;
    while (f && fgets(line, sizeof line, f)) {
        printf("  squeue: %s", line);
        lines++;
    }
    if (f) fclose(f);
    else close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return lines;
}

static int have_squeue(void) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char *copy = strdup(path), *save = NULL;
    int found = 0;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char p[4200];
        snprintf(p, sizeof p, "%s/squeue", d);
        found = access(p, X_OK) == 0;
    }
    free(copy);
    return found;
}

// The jobs of RUN/slurm-jobs ("JOB TASK EVENT TIME ..."): each job's last line,
// and squeue's view of it.
static void print_jobs(const char *run) {
    char path[4200];
    snprintf(path, sizeof path, "%s/slurm-jobs", run);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("slurm: no jobs recorded (%s/slurm-jobs)\n", run);
        return;
    }
    enum { MAXJ = 64 };
    char job[MAXJ][64], last[MAXJ][512], line[512];
    int nj = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char id[64];
        if (sscanf(line, "%63s", id) != 1) continue;
        int k = 0;
        while (k < nj && strcmp(job[k], id)) k++;
        if (k == nj) {
            if (nj == MAXJ) {  // keep the latest jobs
                memmove(job, job + 1, sizeof job[0] * (MAXJ - 1));
                memmove(last, last + 1, sizeof last[0] * (MAXJ - 1));
                k = --nj;
            }
            snprintf(job[nj++], sizeof job[0], "%s", id);
        }
        snprintf(last[k], sizeof last[0], "%s", line);
    }
    fclose(f);
    int sq = have_squeue();
    for (int k = 0; k < nj; k++) {
        printf("slurm job %s: last event: %s\n", job[k], last[k] + strlen(job[k]) + (last[k][strlen(job[k])] == ' '));
        if (sq && !squeue_job(job[k])) printf("  squeue: not in the queue (finished or cancelled)\n");
    }
    if (nj && !sq) printf("(squeue not found: job states not shown)\n");
}

int cmd_status(int argc, char **argv) {
    const char *run = NULL, *shard = NULL;
    int left_only = 0;
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        const char *s = argv[a.i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_switch(&a, "--left", &left_only) || args_flag(&a, "--shard", &shard)) {
        } else if (s[0] != '-' && !run) {
            run = s;
        } else {
            args_unknown(&a, "status");
        }
    }
    if (a.bad) return 2;
    if (!run) {
        fprintf(stderr, "petal status: RUN is required (see petal status --help)\n");
        return 2;
    }
    int k = 0, nshards = 0;
    if (shard && (sscanf(shard, "%d/%d", &k, &nshards) != 2 || nshards < 1 || k < 0 || k >= nshards)) {
        fprintf(stderr, "petal status: --shard expects K/N with 0 <= K < N, got '%s'\n", shard);
        return 2;
    }
    char (*ids)[SWEEP_ID_LEN + 1] = NULL, study[128];
    int n = 0;
    petal_err err;
    if (run_ids(&ids, &n, study, sizeof study, run, &err)) {
        fprintf(stderr, "petal status: %s\n", err.msg);
        return 2;
    }
    int count[RS_COUNT] = {0}, running = 0, total = 0, damaged = 0;
    for (int i = 0; i < n; i++) {
        if (nshards && !sweep_in_shard(ids[i], k, nshards)) continue;
        total++;
        char path[4400];
        snprintf(path, sizeof path, "%s/trials/%s/record.bin", run, ids[i]);
        int status = RS_PENDING;
        if (access(path, F_OK) == 0) {
            results_record rec;
            if (results_record_read(&rec, path, &err)) {
                damaged++;
            } else {
                status = rec.status;
                results_record_free(&rec);
            }
        }
        // a trial that runs again (resumed, retried) counts as running
        if (status != RS_DONE && trial_running(run, ids[i])) running++;
        else count[status]++;
    }
    free(ids);
    int left = count[RS_PENDING] + count[RS_STOPPED] + count[RS_RUNNING];
    if (left_only) {
        printf("%d\n", left);
        return 0;
    }
    printf("%s: study %s, %d trials%s: %d done, %d running, %d failed, %d left", run, study, total,
           nshards ? " in this shard" : "", count[RS_DONE], running, count[RS_FAILED], left);
    if (count[RS_STOPPED]) printf(" (%d checkpointed)", count[RS_STOPPED]);
    if (count[RS_PAUSED]) printf(", %d paused by early stopping", count[RS_PAUSED]);
    printf("\n");
    if (damaged) printf("%d damaged record(s): `petal results check %s` moves them aside\n", damaged, run);
    results_table t;
    if (!results_table_read(&t, run, &err)) {
        printf("results.h5: updated %s\n", t.updated ? t.updated : "?");
        results_table_free(&t);
    } else {
        printf("results.h5: not written yet (array shards: `petal results check %s` merges)\n", run);
    }
    print_jobs(run);
    return 0;
}
