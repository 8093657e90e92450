// `petal sweep`: a study's trials from a YAML spec into a results store, in one
// process (trials in child processes, one after another) or over MPI ranks.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "coordinator/coord.h"
#include "coordinator/mpi.h"
#include "core/threads.h"

static const char usage[] =
    "usage: petal sweep SPEC.yaml --out RUN [options]\n"
    "       petal sweep SPEC.yaml --dry-run\n"
    "Expands the spec (base settings, grid axes, per-method axes, exclude, include,\n"
    "sampled ranges) into trials with stable ids and runs every trial the store RUN\n"
    "does not hold yet: RUN/results.h5 (the table), RUN/trials/<id>/ (records,\n"
    "checkpoints, logs). Rerunning the same command resumes: finished trials are kept,\n"
    "a trial that was running continues from its last epoch checkpoint. Under mpirun,\n"
    "rank 0 coordinates and the other ranks run trials (docs in the README).\n"
    "Ranges ({int|log_int|num|log|choice: [...]}) with `sample: {n, seed, kind:\n"
    "random|sobol}` draw n points per method entry; `early_stop: {kind: asha|median,\n"
    "metric: valid_acc, min_epochs, eta}` runs trials rung by rung (min_epochs * eta^k\n"
    "epochs, then train.epochs), promoting or pausing them (README: Search beyond grids).\n"
    "  --dry-run          print one line per trial (id, the settings that vary) and\n"
    "                     the counts per method, then exit\n"
    "  --threads N        threads per trial (default: SLURM_CPUS_PER_TASK, else the\n"
    "                     CPUs; under MPI the node's CPUs shared by its worker ranks)\n"
    "  --max-attempts N   runs of a trial that crashed or timed out (default 2)\n"
    "  --retry-failed     run trials recorded as failed again\n"
    "  --trial-timeout S  a trial running longer is killed and recorded as failed\n"
    "  --shard K/N        run only shard K (0-based) of N, records only (array jobs;\n"
    "                     `petal results check RUN` merges them into results.h5)\n"
    BACKBONE_CACHE_HELP
    "Exit 0 all done, 1 some trial failed (store complete), 2 bad spec or RUN,\n"
    "75 stopped by SIGTERM/SIGUSR1 with in-flight trials checkpointed (rerun resumes).\n";

static volatile sig_atomic_t stop_flag;
static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void print_note(void *ctx, const char *line) {
    fprintf(ctx, "petal sweep: %s\n", line);
}

static void dry_run(const sweep_spec *s) {
    char vary[1024];
    for (int i = 0; i < s->n; i++) {
        size_t o = 0;
        vary[0] = 0;
        for (int k = 0; k < s->nvarying && o < sizeof vary; k++) {
            const char *v = config_get(&s->trials[i].kv, s->varying[k]);
            o += (size_t)snprintf(vary + o, sizeof vary - o, " %s=%s", s->varying[k], v ? v : "-");
        }
        printf("%s%s\n", s->trials[i].id, vary);
    }
    // counts per method, in order of first appearance
    const char **names = petal_calloc((size_t)(s->n ? s->n : 1), sizeof *names);
    int *counts = petal_calloc((size_t)(s->n ? s->n : 1), sizeof *counts), nn = 0;
    for (int i = 0; i < s->n; i++) {
        const char *m = config_get(&s->trials[i].kv, "method");
        m = m ? m : "linear";
        int k = 0;
        while (k < nn && strcmp(names[k], m)) k++;
        if (k == nn) names[nn++] = m;
        counts[k]++;
    }
    printf("%d trials:", s->n);
    for (int k = 0; k < nn; k++) printf(" %s %d%s", names[k], counts[k], k + 1 < nn ? "," : "");
    printf("\n");
    free(names), free(counts);
}

int cmd_sweep(int argc, char **argv) {
    const char *spec_path = NULL, *out = NULL, *cache = NULL, *shard = NULL;
    int dry = 0, threads = 0, max_attempts = 2, retry_failed = 0;
    float timeout = 0;
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        const char *s = argv[a.i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_flag(&a, "--out", &out) || args_flag(&a, "--backbone-cache", &cache) ||
            args_flag(&a, "--shard", &shard) || args_switch(&a, "--dry-run", &dry) ||
            args_switch(&a, "--retry-failed", &retry_failed) ||
            args_int(&a, "--threads", &threads, 1, 4096) ||
            args_int(&a, "--max-attempts", &max_attempts, 1, 100) ||
            args_float(&a, "--trial-timeout", &timeout, 0.001f, 1e9f)) {
        } else if (s[0] != '-' && !spec_path) {
            spec_path = s;
        } else {
            args_unknown(&a, "sweep");
        }
    }
    if (a.bad) return 2;
    if (!spec_path || (!out && !dry)) {
        fprintf(stderr, "petal sweep: %s (see petal sweep --help)\n",
                !spec_path ? "a spec file is required" : "--out RUN is required");
        return 2;
    }
    int k = 0, nshards = 0;
    if (shard && (sscanf(shard, "%d/%d", &k, &nshards) != 2 || nshards < 1 || k < 0 || k >= nshards)) {
        fprintf(stderr, "petal sweep: --shard expects K/N with 0 <= K < N, got '%s'\n", shard);
        return 2;
    }
    int mpi = coord_mpi_launched();
    petal_err err;
    sweep_spec spec;
    int st = sweep_spec_load(&spec, spec_path, &err);
    if (st) {
        if (!mpi || coord_mpi_rank_hint() == 0) fprintf(stderr, "petal sweep: %s\n", err.msg);
        return st;
    }
    if (dry) {
        dry_run(&spec);
        sweep_spec_free(&spec);
        return 0;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    worker_opts wo = {.run = out, .share_dir = args_backbone_cache(cache), .threads = threads,
                      .timeout = timeout};
    coord_opts co = {.run = out, .max_attempts = max_attempts, .retry_failed = retry_failed,
                     .shard = k, .nshards = nshards, .stop = &stop_flag, .out = stdout,
                     // under mpirun, stdout is the launcher's pipe or pty, whatever the user's is
                     .live = isatty(1) && !mpi, .notes = {print_note, stderr}};
    if (mpi) {
        st = coord_mpi_main(&spec, &co, &wo, &err);
    } else {
        if (!wo.threads) wo.threads = petal_threads_default();
        executor ex;
        local_exec le;
        local_executor(&ex, &le, &wo);
        st = coord_run(&spec, &ex, &co, &err);
        local_executor_close(&le);
    }
    if (st && err.msg[0]) fprintf(stderr, "petal sweep: %s\n", err.msg);
    sweep_spec_free(&spec);
    return st;
}
