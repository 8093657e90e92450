// `petal data synth`: small corpora in the real on-disk layouts, so loaders,
// caches and training can be exercised without the real datasets.
//   speech: speech_commands_v0.02/ spoken by espeak-ng (several voices,
//           speeds, pitches), noise mixed in by sox, 16 kHz mono 16-bit 1 s,
//           validation / testing lists split by speaker, _background_noise_/.
//   sound:  ESC-50/ with meta/esc50.csv and 44.1 kHz 5 s clips of sox-made
//           sounds (tones, sweeps, coloured noise, pulses, tremolo, buzz,
//           plucks) over 5 folds.
// Every random choice is drawn here from the seeded generator before a job
// runs, so the corpus depends only on (--seed, --per-class, --classes): sox runs
// with -R (repeatable), and noise comes from seed-dependent noise beds cut at
// random offsets because sox's own noise would repeat in every clip under -R.
// Class parameter ranges overlap and every clip gets background noise at a
// random SNR, so the tasks are not trivially separable.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/common.h"

// Lowest background-noise SNR (peak over peak). At 0 dB a third of the
// clips were mostly noise and a tiny model stayed near chance after 15
// epochs; from 6 dB the classes are learnable yet far from trivial.
#define SNR_MIN_DB 6.0

// ---- jobs: chains of commands run as child processes, a few at a time ------------

#define JOB_MAX_CMDS 6
#define JOB_MAX_ARGS 40
#define JOB_MAX_TMP 6
#define POOL_MAX 16

typedef struct {
    char arena[8192];  // every argument string of the job
    size_t used;
    char *argv[JOB_MAX_CMDS][JOB_MAX_ARGS + 1];  // NULL-terminated per command
    int argc[JOB_MAX_CMDS];
    int ncmd;
    char *tmp[JOB_MAX_TMP];  // files (in arena) to delete when the job succeeds
    int ntmp;
    char what[512];          // what the job makes, for error messages
} synth_job;

static char *job_str(synth_job *j, const char *fmt, va_list ap) {
    size_t room = sizeof j->arena - j->used;
    int l = vsnprintf(j->arena + j->used, room, fmt, ap);
    PETAL_ASSERT(l >= 0 && (size_t)l < room);  // a job's arguments fit the arena
    char *s = j->arena + j->used;
    j->used += (size_t)l + 1;
    return s;
}

static void job_reset(synth_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_reset(synth_job *j, const char *fmt, ...) {
    j->used = 0;
    j->ncmd = 0;
    j->ntmp = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->what, sizeof j->what, fmt, ap);
    va_end(ap);
}

// Starts a new command (program name) in the job.
static void job_cmd(synth_job *j, const char *prog) {
    PETAL_ASSERT(j->ncmd < JOB_MAX_CMDS);
    j->argc[j->ncmd] = 0;
    j->ncmd++;
    size_t l = strlen(prog) + 1;
    PETAL_ASSERT(j->used + l <= sizeof j->arena);
    char *s = memcpy(j->arena + j->used, prog, l);
    j->used += l;
    int c = j->ncmd - 1;
    j->argv[c][j->argc[c]++] = s;
    j->argv[c][j->argc[c]] = NULL;
}

// Appends one formatted argument to the current command.
static void job_arg(synth_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_arg(synth_job *j, const char *fmt, ...) {
    int c = j->ncmd - 1;
    PETAL_ASSERT(c >= 0 && j->argc[c] < JOB_MAX_ARGS);
    va_list ap;
    va_start(ap, fmt);
    j->argv[c][j->argc[c]++] = job_str(j, fmt, ap);
    va_end(ap);
    j->argv[c][j->argc[c]] = NULL;
}

// Appends several literal arguments (NULL-terminated list).
static void job_args(synth_job *j, ...) {
    va_list ap;
    va_start(ap, j);
    const char *a;
    while ((a = va_arg(ap, const char *))) job_arg(j, "%s", a);
    va_end(ap);
}

static void job_tmp(synth_job *j, const char *path) {
    PETAL_ASSERT(j->ntmp < JOB_MAX_TMP);
    size_t l = strlen(path) + 1;
    PETAL_ASSERT(j->used + l <= sizeof j->arena);
    j->tmp[j->ntmp++] = memcpy(j->arena + j->used, path, l);
    j->used += l;
}

typedef struct {
    int max, running, failed;
    pid_t pid[POOL_MAX];       // 0 = free slot
    char what[POOL_MAX][512];
    char log[POOL_MAX][4300];  // stderr of the slot's current job
    petal_err err;             // first failure
} synth_pool;

// Runs a job's commands one after another (in a forked child); on failure
// appends the failing command to the log and exits 1.
static void job_run_child(const synth_job *j, const char *log) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(3);
    int devnull = open("/dev/null", O_RDWR);
    for (int c = 0; c < j->ncmd; c++) {
        pid_t p = fork();
        if (p < 0) _exit(4);
        if (p == 0) {
            if (devnull >= 0) dup2(devnull, 0), dup2(devnull, 1);
            dup2(fd, 2);
            execvp(j->argv[c][0], j->argv[c]);
            dprintf(2, "cannot run %s: %s\n", j->argv[c][0], strerror(errno));
            _exit(127);
        }
        int status;
        while (waitpid(p, &status, 0) < 0)
            if (errno != EINTR) _exit(5);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            dprintf(fd, "command failed (%s %d):", WIFEXITED(status) ? "exit" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            for (int a = 0; j->argv[c][a]; a++) dprintf(fd, " %s", j->argv[c][a]);
            dprintf(fd, "\n");
            _exit(1);
        }
    }
    for (int t = 0; t < j->ntmp; t++) unlink(j->tmp[t]);
    _exit(0);
}

// Waits for one running job; records the first failure with its log.
static void pool_wait_one(synth_pool *p) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, 0)) < 0 && errno == EINTR) {
    }
    if (pid < 0) {
        p->running = 0;
        return;
    }
    int s = 0;
    while (s < p->max && p->pid[s] != pid) s++;
    if (s == p->max) return;  // not ours
    p->pid[s] = 0;
    p->running--;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    if (p->failed++) return;
    // The log's last line says which command failed; the one before, why.
    char last[400] = "", prev[400] = "", line[400];
    FILE *f = fopen(p->log[s], "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = '\0';
            if (!*line) continue;
            memcpy(prev, last, sizeof prev);
            memcpy(last, line, sizeof last);
        }
        fclose(f);
    }
    petal_fail(&p->err, PETAL_EFAIL, "making %.200s: %s%s%s", p->what[s], prev, *prev ? " | " : "",
               *last ? last : "job failed");
}

static int pool_submit(synth_pool *p, const synth_job *j) {
    while (p->running >= p->max) pool_wait_one(p);
    if (p->failed) return PETAL_EFAIL;
    int s = 0;
    while (p->pid[s]) s++;
    snprintf(p->what[s], sizeof p->what[s], "%s", j->what);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return petal_fail(&p->err, PETAL_EFAIL, "fork failed: %s", strerror(errno));
    if (pid == 0) job_run_child(j, p->log[s]);
    p->pid[s] = pid;
    p->running++;
    return PETAL_OK;
}

static int pool_drain(synth_pool *p) {
    while (p->running > 0) pool_wait_one(p);
    return p->failed ? PETAL_EFAIL : PETAL_OK;
}

// ---- helpers ------------------------------------------------------------------------

static int on_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char buf[4200];
    while (*path) {
        size_t l = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)l, path, prog);
        if (access(buf, X_OK) == 0) return 1;
        path += l + (path[l] == ':');
    }
    return 0;
}

static int make_dir(const char *path, petal_err *err) {
    if (mkdir(path, 0755) && errno != EEXIST)
        return petal_fail(err, PETAL_EFAIL, "%s: cannot create directory (%s)", path, strerror(errno));
    return PETAL_OK;
}

static double unif(petal_rng *r, double lo, double hi) { return lo + (hi - lo) * petal_rng_uniform(r); }
// Log-uniform: frequencies spread evenly in octaves.
static double logu(petal_rng *r, double lo, double hi) { return exp(unif(r, log(lo), log(hi))); }

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int write_sorted_list(const char *path, char **lines, int n, petal_err *err) {
    qsort(lines, (size_t)n, sizeof *lines, cmp_str);
    FILE *f = fopen(path, "w");
    if (!f) return petal_fail(err, PETAL_EFAIL, "%s: cannot create (%s)", path, strerror(errno));
    for (int i = 0; i < n; i++) fprintf(f, "%s\n", lines[i]);
    if (fclose(f)) return petal_fail(err, PETAL_EFAIL, "%s: write failed", path);
    return PETAL_OK;
}

typedef struct {
    const char *out;
    const char *tmp;  // scratch folder for intermediate files
    uint64_t seed;
    int per_class, classes;
} synth_opts;

static const char *noise_colors[3] = {"white", "pink", "brown"};

// ---- speech: a Speech Commands v0.02 look-alike ----------------------------------------

// The 35 words of the real set, the 10 command words first.
static const char *gsc_words[] = {
    "yes",  "no",    "up",    "down",   "left",   "right", "on",     "off",      "stop",
    "go",   "zero",  "one",   "two",    "three",  "four",  "five",   "six",      "seven",
    "eight", "nine", "bed",   "bird",   "cat",    "dog",   "happy",  "house",    "marvin",
    "sheila", "tree", "wow",  "backward", "forward", "follow", "learn", "visual"};
#define N_GSC_WORDS (int)(sizeof gsc_words / sizeof gsc_words[0])

static const char *voices[] = {"en",     "en-us",          "en-gb-x-rp",    "en-gb-scotland",
                               "en-029", "en-us-nyc",      "en-gb-x-gbclan", "en-gb-x-gbcwmd"};
static const char *variants[] = {"m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1",
                                 "f2", "f3", "f4", "f5", "klatt", "klatt2", "croak"};

typedef struct {
    char id[9];      // 8 hex digits, as the real set's speaker hashes
    int voice, variant;
    double pitch;    // espeak -p base, 0..99
    double speed;    // espeak -s base, words per minute
    int split;       // 0 train, 1 valid, 2 test
} speaker;

// Creates the corpus folder base = <--out>/<name>, which must not exist yet.
static int new_corpus(char *base, size_t n, const synth_opts *o, const char *name, petal_err *err) {
    snprintf(base, n, "%s/%s", o->out, name);
    struct stat sb;
    if (!stat(base, &sb))
        return petal_fail(err, PETAL_EINPUT, "%s already exists; remove it or choose another --out", base);
    return make_dir(base, err);
}

static int synth_speech(synth_pool *pool, const synth_opts *o, petal_err *err) {
    char base[4200], path[4400];
    int st;
    if ((st = new_corpus(base, sizeof base, o, "speech_commands_v0.02", err))) return st;
    snprintf(path, sizeof path, "%s/_background_noise_", base);
    if ((st = make_dir(path, err))) return st;
    for (int w = 0; w < o->classes; w++) {
        snprintf(path, sizeof path, "%s/%s", base, gsc_words[w]);
        if ((st = make_dir(path, err))) return st;
    }
    petal_rng rng;
    petal_rng_seed(&rng, o->seed ^ 0x5bd1e9955bd1e995ULL);  // own stream: same set with --kind all
    synth_job *job = petal_malloc(sizeof *job);

    // Noise beds, which are also the _background_noise_ files: 10 s each; the
    // seeded skip makes each seed's noise different.
    for (int c = 0; c < 3; c++) {
        double skip = unif(&rng, 0, 5);
        job_reset(job, "%s/_background_noise_/%s_noise.wav", base, noise_colors[c]);
        job_cmd(job, "sox");
        job_args(job, "-R", "-r", "16000", "-c", "1", "-n", "-b", "16", NULL);
        job_arg(job, "%s", job->what);
        job_arg(job, "synth");
        job_arg(job, "%.3f", 10 + skip);
        job_arg(job, "%snoise", noise_colors[c]);
        job_args(job, "trim", NULL);
        job_arg(job, "%.3f", skip);
        job_args(job, "norm", "-1", NULL);
        if ((st = pool_submit(pool, job))) goto out;
    }
    if ((st = pool_drain(pool))) goto out;

    // Speakers: each says every word per_class / S times; every 5th speaker
    // from the 2nd goes to valid, from the 3rd to test (a 60/20/20 split by
    // speaker, so no voice is in two splits, like the real lists).
    int S = (o->per_class + 1) / 2;
    if (S < 3) S = 3;
    speaker *spk = petal_calloc((size_t)S, sizeof *spk);
    for (int s = 0; s < S; s++) {
        int dup;
        do {
            snprintf(spk[s].id, sizeof spk[s].id, "%08x", (unsigned)(petal_rng_u64(&rng) >> 32));
            dup = 0;
            for (int t = 0; t < s; t++) dup |= !strcmp(spk[t].id, spk[s].id);
        } while (dup);
        spk[s].voice = (int)petal_rng_below(&rng, sizeof voices / sizeof voices[0]);
        spk[s].variant = (int)petal_rng_below(&rng, sizeof variants / sizeof variants[0]);
        spk[s].pitch = unif(&rng, 20, 80);
        spk[s].speed = unif(&rng, 120, 190);
        spk[s].split = s % 5 == 1 ? 1 : s % 5 == 2 ? 2 : 0;
    }
    int nclips = o->classes * o->per_class, nlist[3] = {0, 0, 0};
    char **lists[3];
    char *liststore = petal_malloc((size_t)nclips * 64);
    for (int s = 0; s < 3; s++) lists[s] = petal_malloc((size_t)nclips * sizeof(char *));
    for (int w = 0; w < o->classes && !st; w++) {
        for (int i = 0; i < o->per_class && !st; i++) {
            const speaker *sp = &spk[i % S];
            int rep = i / S;
            char rel[64];
            snprintf(rel, sizeof rel, "%s/%s_nohash_%d.wav", gsc_words[w], sp->id, rep);
            char *keep = liststore + (size_t)(w * o->per_class + i) * 64;
            snprintf(keep, 64, "%s", rel);
            lists[sp->split][nlist[sp->split]++] = keep;

            // Per-clip variation around the speaker's voice.
            double pitch = fmin(99, fmax(0, sp->pitch + unif(&rng, -10, 10)));
            double speed = fmax(80, sp->speed + unif(&rng, -20, 20));
            double onset = unif(&rng, 0, 0.25);
            int color = (int)petal_rng_below(&rng, 3);
            double noff = unif(&rng, 0, 8.9);
            double snr = unif(&rng, SNR_MIN_DB, 30);  // nominal: peak speech over peak noise, dB
            double level = unif(&rng, 1, 15);   // final peak, dB below full scale
            char a[4300], b[4300], c[4300];
            int id = w * o->per_class + i;
            snprintf(a, sizeof a, "%s/s%d_tts.wav", o->tmp, id);
            snprintf(b, sizeof b, "%s/s%d_word.wav", o->tmp, id);
            snprintf(c, sizeof c, "%s/s%d_noise.wav", o->tmp, id);
            job_reset(job, "%s/%s", base, rel);
            job_cmd(job, "espeak-ng");
            job_arg(job, "-v");
            job_arg(job, "%s+%s", voices[sp->voice], variants[sp->variant]);
            job_arg(job, "-s");
            job_arg(job, "%d", (int)speed);
            job_arg(job, "-p");
            job_arg(job, "%d", (int)pitch);
            job_arg(job, "-w");
            job_arg(job, "%s", a);
            job_arg(job, "%s", gsc_words[w]);
            // Cut the synthesiser's leading/trailing silence, then place the word
            // at a random onset in a 1 s, 16 kHz mono window.
            job_cmd(job, "sox");
            job_args(job, "-R", a, "-b", "16", b, "silence", "1", "0.02", "0.5%", "reverse", "silence",
                     "1", "0.02", "0.5%", "reverse", "rate", "16k", "channels", "1", "norm", "-1",
                     "pad", NULL);
            job_arg(job, "%.3f", onset);
            job_args(job, "1", "trim", "0", "1", NULL);
            job_cmd(job, "sox");
            job_arg(job, "-R");
            job_arg(job, "%s/_background_noise_/%s_noise.wav", base, noise_colors[color]);
            job_args(job, c, "trim", NULL);
            job_arg(job, "%.3f", noff);
            job_arg(job, "1");
            job_cmd(job, "sox");
            job_args(job, "-R", "-m", "-v", "0.5", b, "-v", NULL);
            job_arg(job, "%.5f", 0.5 * pow(10, -snr / 20));
            job_args(job, c, "-b", "16", NULL);
            job_arg(job, "%s", job->what);
            job_args(job, "gain", "-n", NULL);
            job_arg(job, "%.2f", -level);
            job_tmp(job, a);
            job_tmp(job, b);
            job_tmp(job, c);
            st = pool_submit(pool, job);
        }
    }
    if (!st) st = pool_drain(pool);
    if (!st) {
        snprintf(path, sizeof path, "%s/validation_list.txt", base);
        st = write_sorted_list(path, lists[1], nlist[1], err);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/testing_list.txt", base);
        st = write_sorted_list(path, lists[2], nlist[2], err);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/SYNTH.txt", base);
        FILE *f = fopen(path, "w");
        if (!f) {
            st = petal_fail(err, PETAL_EFAIL, "%s: cannot create (%s)", path, strerror(errno));
        } else {
            fprintf(f, "Synthetic Speech Commands look-alike made by `petal data synth`\n"
                       "seed %llu, %d words x %d clips, %d speakers (train/valid/test %d/%d/%d clips)\n",
                    (unsigned long long)o->seed, o->classes, o->per_class, S, nlist[0], nlist[1],
                    nlist[2]);
            if (fclose(f)) st = petal_fail(err, PETAL_EFAIL, "%s: write failed", path);
        }
    }
    free(liststore);
    for (int s = 0; s < 3; s++) free(lists[s]);
    free(spk);
out:
    if (st && pool->failed) *err = pool->err;
    free(job);
    return st;
}

// ---- sound: an ESC-50 look-alike ------------------------------------------------------

static const char *sound_classes[] = {"sine_low",  "sine_high", "sweep_up",   "sweep_down",
                                      "white_hiss", "pink_rumble", "brown_roar", "pulses",
                                      "tremolo",   "buzz",      "pluck"};
#define N_SOUND_CLASSES (int)(sizeof sound_classes / sizeof sound_classes[0])

// Appends the synth / filter arguments of one event of class c, duration dur.
// Noise classes cut their event from a bed instead (see synth_sound).
static void sound_event(synth_job *j, petal_rng *r, int c, double dur) {
    switch (c) {
    case 0:  // low tone with a slight drift
    case 1: {  // high tone; the two ranges overlap between 350 and 500 Hz
        double f = c == 0 ? logu(r, 150, 500) : logu(r, 350, 1500);
        job_arg(j, "synth");
        job_arg(j, "%.3f", dur);
        job_arg(j, "sine");
        job_arg(j, "%.1f:%.1f", f, f * unif(r, 0.97, 1.03));
        break;
    }
    case 2:
    case 3: {  // exponential sweeps up or down by 1.3x to 3x
        double f1 = c == 2 ? logu(r, 200, 900) : logu(r, 400, 2000);
        double ratio = unif(r, 1.3, 3.0);
        double f2 = c == 2 ? f1 * ratio : f1 / ratio;
        job_arg(j, "synth");
        job_arg(j, "%.3f", dur);
        job_arg(j, "sine");
        job_arg(j, "%.1f/%.1f", f1, f2);
        break;
    }
    case 7: {  // tone gated by a square wave: 2-9 bursts per second
        job_arg(j, "synth");
        job_arg(j, "%.3f", dur);
        job_arg(j, "sine");
        job_arg(j, "%.1f", logu(r, 250, 1500));
        job_arg(j, "synth");
        job_arg(j, "%.3f", dur);
        job_args(j, "square", "amod", NULL);
        job_arg(j, "%.2f", unif(r, 2, 9));
        job_args(j, "0", "0", NULL);
        job_arg(j, "%.0f", unif(r, 15, 60));
        break;
    }
    case 8: {  // tone with sinusoidal amplitude modulation (close to pulses)
        job_arg(j, "synth");
        job_arg(j, "%.3f", dur);
        job_arg(j, "sine");
        job_arg(j, "%.1f", logu(r, 200, 1200));
        job_arg(j, "tremolo");
        job_arg(j, "%.2f", unif(r, 3, 12));
        job_arg(j, "%.0f", unif(r, 40, 95));
        break;
    }
    case 9: {  // square or sawtooth buzz, low-passed
        job_arg(j, "synth");
        job_arg(j, "%.3f", dur);
        job_arg(j, "%s", petal_rng_below(r, 2) ? "square" : "sawtooth");
        job_arg(j, "%.1f", logu(r, 80, 450));
        job_arg(j, "lowpass");
        job_arg(j, "%.0f", unif(r, 1000, 6000));
        break;
    }
    default: {  // plucked string, repeated every 0.3-1 s over the event
        double gap = unif(r, 0.3, 1.0);
        int reps = (int)(dur / gap);
        job_arg(j, "synth");
        job_arg(j, "%.3f", gap);
        job_arg(j, "pluck");
        job_arg(j, "%.1f", logu(r, 110, 880));
        if (reps > 1) {
            job_arg(j, "repeat");
            job_arg(j, "%d", reps - 1);
        }
        break;
    }
    }
}

static int synth_sound(synth_pool *pool, const synth_opts *o, petal_err *err) {
    char base[4200], path[4400];
    int st;
    if ((st = new_corpus(base, sizeof base, o, "ESC-50", err))) return st;
    snprintf(path, sizeof path, "%s/audio", base);
    if ((st = make_dir(path, err))) return st;
    snprintf(path, sizeof path, "%s/meta", base);
    if ((st = make_dir(path, err))) return st;
    petal_rng rng;
    petal_rng_seed(&rng, o->seed ^ 0xc2b2ae3d27d4eb4fULL);
    synth_job *job = petal_malloc(sizeof *job);
    const double clip = 5.0;  // seconds, as ESC-50

    // Noise beds at 44.1 kHz (scratch files): 25 s each.
    char beds[3][4300];
    for (int c = 0; c < 3; c++) {
        double skip = unif(&rng, 0, 5);
        snprintf(beds[c], sizeof beds[c], "%s/bed_%s.wav", o->tmp, noise_colors[c]);
        job_reset(job, "%s", beds[c]);
        job_cmd(job, "sox");
        job_args(job, "-R", "-r", "44100", "-c", "1", "-n", "-b", "16", beds[c], "synth", NULL);
        job_arg(job, "%.3f", 25 + skip);
        job_arg(job, "%snoise", noise_colors[c]);
        job_arg(job, "trim");
        job_arg(job, "%.3f", skip);
        job_args(job, "norm", "-1", NULL);
        if ((st = pool_submit(pool, job))) goto out;
    }
    if ((st = pool_drain(pool))) goto out;

    snprintf(path, sizeof path, "%s/meta/esc50.csv", base);
    FILE *csv = fopen(path, "w");
    if (!csv) {
        st = petal_fail(err, PETAL_EFAIL, "%s: cannot create (%s)", path, strerror(errno));
        goto out;
    }
    fprintf(csv, "filename,fold,target,category,esc10,src_file,take\n");
    int *srcs = petal_malloc((size_t)o->classes * o->per_class * sizeof *srcs);
    int nsrc = 0;
    for (int c = 0; c < o->classes && !st; c++) {
        for (int i = 0; i < o->per_class && !st; i++) {
            // Folds: clips of a class cycle through folds 1..5 (balanced when
            // per_class is a multiple of 5), starting at a class-dependent fold.
            int fold = (i + c) % 5 + 1;
            int src, dup;
            do {  // unique 6-digit source ids, like freesound ids in the real set
                src = 100000 + (int)petal_rng_below(&rng, 900000);
                dup = 0;
                for (int t = 0; t < nsrc; t++) dup |= srcs[t] == src;
            } while (dup);
            srcs[nsrc++] = src;
            char name[64];
            snprintf(name, sizeof name, "%d-%d-A-%d.wav", fold, src, c);
            fprintf(csv, "%s,%d,%d,%s,False,%d,A\n", name, fold, c, sound_classes[c], src);

            double dur = unif(&rng, 1.5, clip);
            double onset = unif(&rng, 0, clip - dur);
            double fin = unif(&rng, 0.01, 0.2), fout = unif(&rng, 0.05, 0.5);
            int bg = (int)petal_rng_below(&rng, 3);
            double bgoff = unif(&rng, 0, 25 - clip - 0.1);
            double snr = unif(&rng, SNR_MIN_DB, 30);  // nominal: peak event over peak noise, dB
            double level = unif(&rng, 1, 15);   // final peak, dB below full scale
            char ev[4300], bgw[4300];
            int id = c * o->per_class + i;
            snprintf(ev, sizeof ev, "%s/e%d_event.wav", o->tmp, id);
            snprintf(bgw, sizeof bgw, "%s/e%d_bg.wav", o->tmp, id);
            job_reset(job, "%s/audio/%s", base, name);
            job_cmd(job, "sox");
            if (c >= 4 && c <= 6) {  // coloured noise events, band-limited at random
                int color = c - 4;
                job_args(job, "-R", beds[color], "-b", "16", ev, "trim", NULL);
                job_arg(job, "%.3f", unif(&rng, 0, 25 - dur - 0.1));
                job_arg(job, "%.3f", dur);
                if (color == 2) {
                    job_arg(job, "highpass");
                    job_arg(job, "%.0f", logu(&rng, 40, 400));
                } else {
                    job_arg(job, "lowpass");
                    job_arg(job, "%.0f", color == 0 ? logu(&rng, 3000, 15000) : logu(&rng, 2000, 12000));
                }
            } else {
                job_args(job, "-R", "-r", "44100", "-c", "1", "-n", "-b", "16", ev, NULL);
                sound_event(job, &rng, c, dur);
            }
            job_args(job, "fade", "q", NULL);
            job_arg(job, "%.3f", fin);
            job_arg(job, "%.3f", dur);
            job_arg(job, "%.3f", fout);
            job_args(job, "norm", "-1", "pad", NULL);
            job_arg(job, "%.3f", onset);
            job_arg(job, "%.1f", clip);
            job_args(job, "trim", "0", NULL);
            job_arg(job, "%.1f", clip);
            job_cmd(job, "sox");
            job_args(job, "-R", beds[bg], bgw, "trim", NULL);
            job_arg(job, "%.3f", bgoff);
            job_arg(job, "%.1f", clip);
            job_cmd(job, "sox");
            job_args(job, "-R", "-m", "-v", "0.5", ev, "-v", NULL);
            job_arg(job, "%.5f", 0.5 * pow(10, -snr / 20));
            job_args(job, bgw, "-b", "16", NULL);
            job_arg(job, "%s", job->what);
            job_args(job, "gain", "-n", NULL);
            job_arg(job, "%.2f", -level);
            job_tmp(job, ev);
            job_tmp(job, bgw);
            st = pool_submit(pool, job);
        }
    }
    free(srcs);
    if (fclose(csv) && !st) st = petal_fail(err, PETAL_EFAIL, "%s: write failed", path);
    if (!st) st = pool_drain(pool);
    for (int c = 0; c < 3; c++) unlink(beds[c]);
    if (!st) {
        snprintf(path, sizeof path, "%s/SYNTH.txt", base);
        FILE *f = fopen(path, "w");
        if (!f) {
            st = petal_fail(err, PETAL_EFAIL, "%s: cannot create (%s)", path, strerror(errno));
        } else {
            fprintf(f, "Synthetic ESC-50 look-alike made by `petal data synth`\n"
                       "seed %llu, %d classes x %d clips, 5 folds, 44.1 kHz mono 16-bit 5 s\n",
                    (unsigned long long)o->seed, o->classes, o->per_class);
            if (fclose(f)) st = petal_fail(err, PETAL_EFAIL, "%s: write failed", path);
        }
    }
out:
    if (st && pool->failed) *err = pool->err;
    free(job);
    return st;
}

// ---- the command ------------------------------------------------------------------------

static void synth_usage(FILE *f) {
    fprintf(f,
            "usage: petal data synth --out DIR [--kind speech|sound|all] [--seed N]\n"
            "                        [--per-class N] [--classes N] [--jobs N]\n"
            "  Writes DIR/speech_commands_v0.02 (speech: espeak-ng keywords + noise, 16 kHz 1 s)\n"
            "  and/or DIR/ESC-50 (sound: sox-made sounds, 44.1 kHz 5 s, 5 folds).\n"
            "  --kind      all (default), speech or sound\n"
            "  --seed      corpus seed (default 1); same seed, same files\n"
            "  --per-class clips per class (default 30)\n"
            "  --classes   classes (default 10; speech up to %d words, sound up to %d)\n"
            "  --jobs      sox/espeak-ng processes at a time (default 2)\n",
            N_GSC_WORDS, N_SOUND_CLASSES);
}

static int parse_pos(int *v, const char *opt, const char *s) {
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || *end || x < 1 || x > 100000) {
        fprintf(stderr, "petal data synth: %s wants a positive integer, got '%s'\n", opt, s);
        return 0;
    }
    *v = (int)x;
    return 1;
}

int cmd_data_synth(int argc, char **argv) {
    const char *out = NULL, *kind = "all";
    unsigned long long seed = 1;
    int per_class = 30, classes = 10, jobs = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            synth_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "petal data synth: unknown or incomplete option '%s'\n", a);
            synth_usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--kind")) {
            kind = v;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            seed = strtoull(v, &end, 10);
            if (end == v || *end) {
                fprintf(stderr, "petal data synth: --seed wants an integer, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--per-class")) {
            if (!parse_pos(&per_class, a, v)) return 2;
        } else if (!strcmp(a, "--classes")) {
            if (!parse_pos(&classes, a, v)) return 2;
        } else if (!strcmp(a, "--jobs")) {
            if (!parse_pos(&jobs, a, v)) return 2;
            if (jobs > POOL_MAX) jobs = POOL_MAX;
        } else {
            fprintf(stderr, "petal data synth: unknown option '%s'\n", a);
            synth_usage(stderr);
            return 2;
        }
    }
    int speech = !strcmp(kind, "speech") || !strcmp(kind, "all");
    int sound = !strcmp(kind, "sound") || !strcmp(kind, "all");
    if (!out || (!speech && !sound)) {
        if (out) fprintf(stderr, "petal data synth: --kind must be speech, sound or all\n");
        synth_usage(stderr);
        return 2;
    }
    if ((speech && classes > N_GSC_WORDS) || (sound && classes > N_SOUND_CLASSES)) {
        fprintf(stderr, "petal data synth: --classes %d is more than the %d %s classes available\n",
                classes, sound ? N_SOUND_CLASSES : N_GSC_WORDS, sound ? "sound" : "speech");
        return 2;
    }
    if (speech && !on_path("espeak-ng")) {
        fprintf(stderr, "petal data synth: espeak-ng not found on PATH (tools/deps.sh installs it)\n");
        return 1;
    }
    if (!on_path("sox")) {
        fprintf(stderr, "petal data synth: sox not found on PATH (tools/deps.sh installs it)\n");
        return 1;
    }
    petal_err err = {{0}};
    if (make_dir(out, &err)) {
        fprintf(stderr, "petal data synth: %s\n", err.msg);
        return 1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.synth-tmp.%ld", out, (long)getpid());
    if (make_dir(tmp, &err)) {
        fprintf(stderr, "petal data synth: %s\n", err.msg);
        return 1;
    }
    synth_pool *pool = petal_calloc(1, sizeof *pool);
    pool->max = jobs;
    for (int s = 0; s < POOL_MAX; s++) snprintf(pool->log[s], sizeof pool->log[s], "%s/job%d.log", tmp, s);
    synth_opts o = {out, tmp, seed, per_class, classes};
    double t0 = petal_now();
    int st = PETAL_OK;
    if (speech) {
        st = synth_speech(pool, &o, &err);
        if (!st)
            printf("speech: %s/speech_commands_v0.02: %d words x %d clips (%.1f s)\n", out, classes,
                   per_class, petal_now() - t0);
    }
    if (!st && sound) {
        double t1 = petal_now();
        st = synth_sound(pool, &o, &err);
        if (!st)
            printf("sound: %s/ESC-50: %d classes x %d clips (%.1f s)\n", out, classes, per_class,
                   petal_now() - t1);
    }
    pool_drain(pool);
    if (st) {
        // Scratch files and job logs stay for inspection.
        fprintf(stderr, "petal data synth: %s\n", err.msg);
        fprintf(stderr, "petal data synth: partial output left in %s (scratch files in %s)\n", out, tmp);
        free(pool);
        return st == PETAL_EINPUT ? 2 : 1;
    }
    for (int s = 0; s < POOL_MAX; s++) unlink(pool->log[s]);
    free(pool);
    if (rmdir(tmp)) fprintf(stderr, "petal data synth: warning: cannot remove %s (%s)\n", tmp, strerror(errno));
    return 0;
}
