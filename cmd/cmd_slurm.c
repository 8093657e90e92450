// `petal slurm`: a sweep as a SLURM batch script (MPI in one allocation, or a
// job array of shards), optionally submitted. Everything the script needs is
// decided here and written into it as quoted literals: the script is the
// readable record of what runs, and nothing from a spec, a path or a flag can
// become shell code (values go through sh_quote / sbatch_quote; control
// characters, which no quoting makes safe in a #SBATCH line, are refused).
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/version.h"
#include "sweeps/spec.h"

static const char usage[] =
    "usage: petal slurm SPEC.yaml --out RUN [options]\n"
    "Writes a SLURM batch script that runs `petal sweep SPEC --out RUN` (to stdout, or\n"
    "--script FILE), and with --submit submits it and prints the job id. RUN is created\n"
    "(the job's output goes to RUN/slurm-<job>.out). Resubmitting resumes.\n"
    "  --nodes N             nodes (default 1)\n"
    "  --ntasks-per-node k   MPI ranks per node (default 2); rank 0 coordinates, the\n"
    "                        others run one trial each at a time. 1 node x 1 task: one\n"
    "                        process, no MPI. Ranks start with `srun --mpi=pmix` when the\n"
    "                        cluster offers it, else with mpirun inside the allocation\n"
    "  --cpus-per-task c     CPUs (= threads) per rank or array task (petal reads\n"
    "                        SLURM_CPUS_PER_TASK)\n"
    "  --mem M  --time T  --partition P  --account A  --qos Q   as sbatch's flags\n"
    "  --sbatch \"DIRECTIVE\"  any other sbatch option, e.g. --sbatch --gres=gpu:1\n"
    "                        (repeatable; written as a #SBATCH line, its value quoted)\n"
    "  --signal-secs S       SLURM sends the script USR1 S seconds before the time limit\n"
    "                        (default 120): the sweep checkpoints its trials, exits 75 and\n"
    "                        the job requeues itself while trials are left; SIGTERM\n"
    "                        (preemption, scancel) does the same\n"
    "  --array               a job array instead: task K of N runs `petal sweep --shard K/N`\n"
    "                        in one process (N = the number of trials, at most 1000); the\n"
    "                        last task to finish merges the records into RUN/results.h5\n"
    "  --throttle n          at most n array tasks at once (--array=0-(N-1)%n)\n"
    "  --script FILE         write the script to FILE (with --submit: default\n"
    "                        RUN/slurm-job.sh)\n"
    "  --submit              submit it with sbatch; prints the job id\n"
    "Exit 0 ok, 1 sbatch failed, 2 bad spec or flag.\n";

#define MAX_DIRECTIVES 64
#define MAX_ARRAY 1000  // SLURM's default MaxArraySize is 1001 (indices 0..1000)

typedef struct {
    const char *spec, *out, *mem, *time, *partition, *account, *qos, *script;
    const char *directives[MAX_DIRECTIVES];
    int ndirectives;
    int nodes, ntasks_per_node, cpus_per_task, signal_secs, array, throttle, submit;
    int nodes_given, ntasks_given;
} slurm_opts;

// ---- quoting ------------------------------------------------------------------
// A shell word: 'text' with each ' written as '\'' (bash reads every other
// byte, newlines included, literally between single quotes).
static void sh_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    fputc('\'', f);
}

// A #SBATCH value: sbatch's script parser reads "..." with \" and \\ escapes
// (and '#' inside quotes as text). Control characters are refused earlier:
// a newline would end the comment and start a shell line. percent: a file
// name, where %% is a literal % (and %j a pattern).
static void sbatch_quote_body(FILE *f, const char *s, int percent) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '%' && percent) fputc('%', f);
        fputc(*s, f);
    }
}

static void sbatch_quote(FILE *f, const char *s) {
    fputc('"', f);
    sbatch_quote_body(f, s, 0);
    fputc('"', f);
}

static int has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

// A flag value that goes into a #SBATCH line: printable, not empty.
static int check_value(const char *flag, const char *v) {
    if (!v) return 0;
    if (!*v || has_control(v)) {
        fprintf(stderr, "petal slurm: %s: %s\n", flag,
                *v ? "control characters (newlines, tabs) cannot go into a #SBATCH line" : "empty value");
        return 2;
    }
    return 0;
}

// An sbatch option's name: -x or --long-name, before its = or space.
static int directive_name_ok(const char *d) {
    size_t n = strcspn(d, "= \t");
    if (n < 2 || d[0] != '-') return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)d[i]) && d[i] != '-' && d[i] != '_') return 0;
    return 1;
}

// ---- the script -----------------------------------------------------------------
static void sbatch_line(FILE *f, const char *name, const char *value) {
    fprintf(f, "#SBATCH --%s=", name);
    sbatch_quote(f, value);
    fputc('\n', f);
}

// The part that runs petal in the background and waits: bash runs a trap only
// between commands, and a signal ends `wait` (then petal still runs: wait
// again). The trap forwards USR1 to petal (srun and mpirun pass it to the
// ranks); TERM is forwarded as USR1 too, since mpirun answers TERM by killing
// the ranks instead of passing it on.
static const char script_run[] =
    "# petal runs in the background: bash runs a trap only between commands, and a\n"
    "# signal ends `wait` early (petal still runs then: wait again).\n"
    "pid= signalled=0\n"
    "forward() {\n"
    "  signalled=1\n"
    "  note \"SIG$1: asking petal to checkpoint its trials and stop\"\n"
    "  [ -n \"$pid\" ] && kill -USR1 \"$pid\" 2>/dev/null\n"
    "}\n"
    "trap 'forward USR1' USR1\n"
    "trap 'forward TERM' TERM\n";

static const char script_wait[] =
    "pid=$!\n"
    "while :; do\n"
    "  signalled=0\n"
    "  wait \"$pid\"; rc=$?\n"
    "  [ \"$signalled\" = 1 ] || break\n"
    "done\n"
    "note \"petal exited $rc\"\n";

// Exit 75: checkpointed. Requeue this job (or array task) while its trials are left.
static const char script_requeue[] =
    "if [ \"$rc\" = 75 ]; then\n"
    "  left=$(\"$petal\" status \"$run\" --left $shard_flag 2>/dev/null) || left=unknown\n"
    "  if [ \"$left\" = 0 ]; then\n"
    "    note \"every trial finished\"; rc=0\n"
    "  elif [ -n \"${SLURM_JOB_ID:-}\" ]; then\n"
    "    note \"trials checkpointed, $left left: requeueing job $SLURM_JOB_ID\"\n"
    "    log requeue\n"
    "    scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n"
    "    note \"scontrol requeue failed: submit this script again to resume\"\n"
    "  fi\n"
    "fi\n";

static void write_script(FILE *f, const slurm_opts *o, const sweep_spec *spec, const char *petal,
                         const char *spec_abs, const char *run_abs, const char *cwd, int nshards) {
    char when[32], jobname[70] = "petal-";  // squeue shows the first few characters
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t j = strlen(jobname);
    for (const char *s = spec->study; *s && j + 1 < sizeof jobname; s++)
        jobname[j++] = isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-' ? *s : '_';
    jobname[j] = 0;
    int ranks = o->nodes * o->ntasks_per_node, mpi = !o->array && ranks > 1;

    fprintf(f, "#!/bin/bash\n");
    fprintf(f, "# petal sweep as a SLURM batch job, written by `petal slurm` (petal %s) at %s.\n",
            petal_version(), when);
    fprintf(f, "# Study '%s': %d trials, results in RUN/results.h5 (`petal status RUN`).\n", jobname + 6,
            spec->n);
    if (o->array)
        fprintf(f, "# A job array: task K of %d runs shard K of the trials in one process; the last\n"
                   "# task to finish merges the trial records into RUN/results.h5.\n", nshards);
    else if (mpi)
        fprintf(f, "# MPI: %d node(s) x %d rank(s); rank 0 coordinates, the %d others run a trial each\n"
                   "# with SLURM_CPUS_PER_TASK threads.\n", o->nodes, o->ntasks_per_node, ranks - 1);
    else
        fprintf(f, "# One process: trials one after another, SLURM_CPUS_PER_TASK threads each.\n");
    fprintf(f, "# USR1 %d s before the time limit, or TERM (preemption, scancel): the sweep\n"
               "# checkpoints its running trials and exits 75, and the job requeues itself while\n"
               "# trials are left. Submitting this script again resumes the same way.\n",
            o->signal_secs);
    sbatch_line(f, "job-name", jobname);
    sbatch_line(f, "chdir", cwd);
    fprintf(f, "#SBATCH --output=\"");  // RUN/slurm-<job>.out, the path's own % doubled
    sbatch_quote_body(f, run_abs, 1);
    fprintf(f, "/slurm-%s.out\"\n", o->array ? "%A_%a" : "%j");
    fprintf(f, "#SBATCH --open-mode=append\n");
    if (o->array) {
        fprintf(f, "#SBATCH --array=0-%d", nshards - 1);
        if (o->throttle) fprintf(f, "%%%d", o->throttle);
        fprintf(f, "\n#SBATCH --ntasks=1\n");
    } else {
        fprintf(f, "#SBATCH --nodes=%d\n#SBATCH --ntasks-per-node=%d\n", o->nodes, o->ntasks_per_node);
    }
    if (o->cpus_per_task) fprintf(f, "#SBATCH --cpus-per-task=%d\n", o->cpus_per_task);
    if (o->mem) sbatch_line(f, "mem", o->mem);
    if (o->time) sbatch_line(f, "time", o->time);
    if (o->partition) sbatch_line(f, "partition", o->partition);
    if (o->account) sbatch_line(f, "account", o->account);
    if (o->qos) sbatch_line(f, "qos", o->qos);
    fprintf(f, "#SBATCH --signal=B:USR1@%d\n#SBATCH --requeue\n", o->signal_secs);
    // --sbatch "--name=value" (or "--name value", or a bare "--name"): the value quoted
    for (int i = 0; i < o->ndirectives; i++) {
        const char *d = o->directives[i];
        size_t name = strcspn(d, "= \t");
        fprintf(f, "#SBATCH %.*s", (int)name, d);
        if (d[name]) {
            fputc('=', f);
            sbatch_quote(f, d + name + 1 + strspn(d + name + 1, " "));
        }
        fputc('\n', f);
    }

    fprintf(f, "\nset -u\n");
    fprintf(f, "petal=");
    sh_quote(f, petal);
    fprintf(f, "\nspec=");
    sh_quote(f, spec_abs);
    fprintf(f, "\nrun=");
    sh_quote(f, run_abs);
    fprintf(f, "\n");
    if (o->array) fprintf(f, "shards=%d\n", nshards);
    fprintf(f,
            "job=${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-none}} task=${SLURM_ARRAY_TASK_ID:--}\n"
            "note() { echo \"petal-slurm $(date -u +%%H:%%M:%%S): $*\"; }\n"
            "# RUN/slurm-jobs: one line per event of each job behind RUN (`petal status RUN`)\n"
            "log() {\n"
            "  echo \"$job $task $1 $(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ) restart=${SLURM_RESTART_COUNT:-0}\" \\\n"
            "       \"host=$(hostname -s) jobid=${SLURM_JOB_ID:-none}\" >>\"$run/slurm-jobs\"\n"
            "}\n"
            "mkdir -p -- \"$run\" && log start\n"
            "note \"job $job task $task on $(hostname -s), restart ${SLURM_RESTART_COUNT:-0}\"\n\n");
    fputs(script_run, f);
    if (o->array) {
        fprintf(f,
                "\n: \"${SLURM_ARRAY_TASK_ID:?this script is a job array: submit it with sbatch}\"\n"
                "shard_flag=\"--shard $SLURM_ARRAY_TASK_ID/$shards\"\n"
                "\"$petal\" sweep \"$spec\" --out \"$run\" --shard \"$SLURM_ARRAY_TASK_ID/$shards\" &\n");
    } else if (mpi) {
        fprintf(f,
                "\nshard_flag=\n"
                "# srun with PMIx when the cluster offers it, else Open MPI's mpirun (it finds the\n"
                "# allocation itself). srun needs --cpus-per-task again (SLURM 22.05 does not\n"
                "# pass it on from sbatch); mpirun must not bind a rank to one core.\n"
                "if srun --mpi=list 2>&1 | grep -qw pmix; then\n"
                "  launch=(srun --mpi=pmix --kill-on-bad-exit=0\n"
                "          ${SLURM_CPUS_PER_TASK:+\"--cpus-per-task=$SLURM_CPUS_PER_TASK\"})\n"
                "else\n"
                "  launch=(mpirun -n \"$SLURM_NTASKS\" --bind-to none)\n"
                "fi\n"
                "note \"${launch[0]}: $SLURM_NTASKS ranks, ${SLURM_CPUS_PER_TASK:-all} CPUs each\"\n"
                "\"${launch[@]}\" \"$petal\" sweep \"$spec\" --out \"$run\" &\n");
    } else {
        fprintf(f, "\nshard_flag=\n\"$petal\" sweep \"$spec\" --out \"$run\" &\n");
    }
    fputs(script_wait, f);
    fputs(script_requeue, f);
    if (o->array)
        fprintf(f,
                "# This shard is finished (its records are written): the last task to finish\n"
                "# merges every shard's records into RUN/results.h5 (mkdir is atomic, so one does).\n"
                "marks=\"$run/slurm-array/$job\"\n"
                "if [ \"$rc\" != 75 ] && mkdir -p -- \"$marks\" && : >\"$marks/$SLURM_ARRAY_TASK_ID.done\"; then\n"
                "  set -- \"$marks\"/*.done\n"
                "  if [ \"$#\" -ge \"$shards\" ] && mkdir -- \"$marks/merge\" 2>/dev/null; then\n"
                "    note \"all $shards shards finished: merging their records into $run/results.h5\"\n"
                "    \"$petal\" results check \"$run\" || rc=$?\n"
                "    log merged\n"
                "  fi\n"
                "fi\n");
    fprintf(f, "log \"exit=$rc\"\nexit \"$rc\"\n");
}

// ---- submission -------------------------------------------------------------------
// Runs `sbatch --parsable script`; the job id into id. Returns sbatch's exit status.
static int run_sbatch(char *id, size_t n, const char *script) {
    int p[2];
    if (pipe(p)) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]), close(p[1]);
        execlp("sbatch", "sbatch", "--parsable", script, (char *)NULL);
        fprintf(stderr, "petal slurm: cannot run sbatch (%s); is this a SLURM login node?\n", strerror(errno));
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && ((r = read(p[0], id + got, n - 1 - got)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0) got += (size_t)r;
    id[got] = 0;
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    id[strcspn(id, ";\n")] = 0;  // "jobid" or "jobid;cluster"
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// An absolute form of path (which need not exist yet): realpath of its folder.
static int absolute(char *out, const char *path) {
    if (realpath(path, out)) return 0;
    char dir[PATH_MAX], base[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;
    char *slash = strrchr(dir, '/');
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : dir);
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    char real[PATH_MAX];
    if (!realpath(dir, real)) return -1;
    size_t nr = strlen(real), nb = strlen(base), sep = strcmp(real, "/") != 0;
    if (nr + sep + nb + 1 > PATH_MAX) return errno = ENAMETOOLONG, -1;
    memcpy(out, real, nr);
    if (sep) out[nr] = '/';
    memcpy(out + nr + sep, base, nb + 1);
    return 0;
}

// mkdir -p: RUN and its missing parents.
static int mkdir_p(const char *path) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return errno = ENAMETOOLONG, -1;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) && errno != EEXIST) return -1;
            *s = '/';
        }
    return mkdir(p, 0777) && errno != EEXIST ? -1 : 0;
}

int cmd_slurm(int argc, char **argv) {
    slurm_opts o = {.nodes = 1, .ntasks_per_node = 2, .signal_secs = 120};
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        const char *s = argv[a.i], *v = NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_flag(&a, "--sbatch", &v)) {
            if (!v) continue;
            if (o.ndirectives == MAX_DIRECTIVES) {
                fprintf(stderr, "petal slurm: more than %d --sbatch directives\n", MAX_DIRECTIVES);
                a.bad = 1;
            } else if (check_value("--sbatch", v) || v[0] != '-' || !directive_name_ok(v)) {
                if (v[0] && !has_control(v))
                    fprintf(stderr, "petal slurm: --sbatch expects an sbatch option such as --gres=gpu:1, got '%s'\n", v);
                a.bad = 1;
            } else {
                o.directives[o.ndirectives++] = v;
            }
        } else if (args_flag(&a, "--out", &o.out) || args_flag(&a, "--script", &o.script)) {
        } else if (args_flag(&a, "--mem", &o.mem) || args_flag(&a, "--time", &o.time) ||
                   args_flag(&a, "--partition", &o.partition) || args_flag(&a, "--account", &o.account) ||
                   args_flag(&a, "--qos", &o.qos)) {
            if (check_value(s, argv[a.i])) a.bad = 1;
        } else if (args_int(&a, "--nodes", &o.nodes, 1, 100000)) {
            o.nodes_given = 1;
        } else if (args_int(&a, "--ntasks-per-node", &o.ntasks_per_node, 1, 100000)) {
            o.ntasks_given = 1;
        } else if (args_int(&a, "--cpus-per-task", &o.cpus_per_task, 1, 100000) ||
                   args_int(&a, "--signal-secs", &o.signal_secs, 1, 65535) ||
                   args_int(&a, "--throttle", &o.throttle, 1, 100000) ||
                   args_switch(&a, "--array", &o.array) || args_switch(&a, "--submit", &o.submit)) {
        } else if (s[0] != '-' && !o.spec) {
            o.spec = s;
        } else {
            args_unknown(&a, "slurm");
        }
    }
    if (a.bad) return 2;
    if (!o.spec || !o.out) {
        fprintf(stderr, "petal slurm: %s (see petal slurm --help)\n",
                !o.spec ? "a spec file is required" : "--out RUN is required");
        return 2;
    }
    if (o.array && (o.nodes_given || o.ntasks_given)) {
        fprintf(stderr, "petal slurm: --array runs one process per array task; --nodes and "
                        "--ntasks-per-node are for the MPI mode\n");
        return 2;
    }
    if (o.throttle && !o.array) {
        fprintf(stderr, "petal slurm: --throttle limits array tasks; it needs --array\n");
        return 2;
    }
    petal_err err;
    sweep_spec spec;
    if (sweep_spec_load(&spec, o.spec, &err)) {
        fprintf(stderr, "petal slurm: %s\n", err.msg);
        return 2;
    }
    int nshards = spec.n < MAX_ARRAY ? spec.n : MAX_ARRAY;
    char petal[PATH_MAX], spec_abs[PATH_MAX], run_abs[PATH_MAX], cwd[PATH_MAX];
    ssize_t pl = readlink("/proc/self/exe", petal, sizeof petal - 1);
    int st = 0;
    if (pl <= 0) st = fprintf(stderr, "petal slurm: cannot find the petal binary (/proc/self/exe)\n");
    else petal[pl] = 0;
    if (!st && (absolute(spec_abs, o.spec) || !getcwd(cwd, sizeof cwd)))
        st = fprintf(stderr, "petal slurm: %s: %s\n", o.spec, strerror(errno));
    if (!st && mkdir_p(o.out))
        st = fprintf(stderr, "petal slurm: --out %s: cannot create the folder (%s)\n", o.out, strerror(errno));
    if (!st && absolute(run_abs, o.out))
        st = fprintf(stderr, "petal slurm: --out %s: %s\n", o.out, strerror(errno));
    // a newline in a path could not go into the #SBATCH lines (chdir, output)
    if (!st && (has_control(cwd) || has_control(run_abs)))
        st = fprintf(stderr, "petal slurm: %s: control characters in the path cannot go into a #SBATCH line\n",
                     has_control(cwd) ? cwd : o.out);
    // SLURM reads a backslash in an output file name as "no %j patterns" and drops it
    if (!st && strchr(run_abs, '\\'))
        st = fprintf(stderr, "petal slurm: --out %s: SLURM's output file names cannot hold a backslash\n", o.out);
    if (st) {
        sweep_spec_free(&spec);
        return 2;
    }
    char script[PATH_MAX + 32];
    if (o.script) snprintf(script, sizeof script, "%s", o.script);
    else snprintf(script, sizeof script, "%s/slurm-job.sh", run_abs);
    FILE *f = o.script || o.submit ? fopen(script, "w") : stdout;
    if (!f) {
        fprintf(stderr, "petal slurm: --script %s: cannot write (%s)\n", script, strerror(errno));
        sweep_spec_free(&spec);
        return 2;
    }
    write_script(f, &o, &spec, petal, spec_abs, run_abs, cwd, nshards);
    sweep_spec_free(&spec);
    if (f != stdout) {
        if (fclose(f)) {
            fprintf(stderr, "petal slurm: %s: cannot write (%s)\n", script, strerror(errno));
            return 1;
        }
        chmod(script, 0755);
    } else if (fflush(stdout)) {
        return 1;
    }
    if (!o.submit) {
        if (o.script) fprintf(stderr, "petal slurm: wrote %s; submit it with: sbatch %s\n", script, script);
        return 0;
    }
    char id[256];
    int rc = run_sbatch(id, sizeof id, script);
    if (rc || !id[0]) {
        fprintf(stderr, "petal slurm: sbatch %s failed (exit %d)\n", script, rc);
        return 1;
    }
    // the job is behind RUN from now on, before it starts (petal status RUN)
    char jobs[PATH_MAX + 32], when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(jobs, sizeof jobs, "%s/slurm-jobs", run_abs);
    FILE *jf = fopen(jobs, "a");
    if (jf) fprintf(jf, "%s - submitted %s\n", id, when), fclose(jf);
    printf("%s\n", id);
    return 0;
}
