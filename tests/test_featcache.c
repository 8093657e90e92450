// Feature cache: built once and shared, for real across processes (forked
// children ask for the same cache at the same moment: exactly one extracts,
// all read identical features), invalidated by a changed parameter string or
// a changed audio file, extended incrementally, and clean on extractor errors.
// The extractor is a stand-in for the fbank: a deterministic function of the
// file's bytes that also logs each call to a shared file, so calls are
// counted across processes.
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/featcache.h"
#include "tests/check.h"

#define NFILES 12
#define FRAMES 7
#define BINS 5
#define NPROC 4

static char tmp[256], calls_log[512];

typedef struct {
    int slow_us;             // sleep per call, so concurrent requests overlap
    const char *fail_on;     // path suffix whose extraction fails
} extract_ctx;

// Features of a file: (FRAMES, BINS) values from a hash of its bytes.
static int expected(float *out, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint64_t h = 1469598103934665603ULL;
    int c;
    while ((c = fgetc(f)) != EOF) h = (h ^ (unsigned)c) * 1099511628211ULL;
    fclose(f);
    for (int t = 0; t < FRAMES; t++)
        for (int b = 0; b < BINS; b++)
            out[t * BINS + b] = (float)((h >> ((t + b) % 48)) & 0xffff) / 65536.0f + (float)t - (float)b;
    return 0;
}

static int extract(float *out, const char *path, void *vctx, petal_err *err) {
    extract_ctx *ctx = vctx;
    size_t l = strlen(path);
    if (ctx->fail_on && l >= strlen(ctx->fail_on) && !strcmp(path + l - strlen(ctx->fail_on), ctx->fail_on))
        return petal_fail(err, PETAL_EINPUT, "%s: cannot decode (test)", path);
    int fd = open(calls_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dprintf(fd, "%d %s\n", (int)getpid(), path);
        close(fd);
    }
    if (ctx->slow_us) usleep((useconds_t)ctx->slow_us);
    if (expected(out, path)) return petal_fail(err, PETAL_EINPUT, "%s: cannot open", path);
    return PETAL_OK;
}

static int count_calls(void) {
    FILE *f = fopen(calls_log, "r");
    if (!f) return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static void reset_calls(void) { unlink(calls_log); }

static void write_audio(const char *path, int seed, int len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    for (int i = 0; i < len; i++) fputc((seed * 131 + i * 7) & 0xff, f);
    fclose(f);
}

// Opens the cache for paths, reads all rows and compares them with expected().
// Returns 0 if every row matches; stats filled.
static int open_and_verify(featcache_stats *stats, const char *file, const char *params,
                           const char *const *paths, int n, extract_ctx *ctx, petal_err *err) {
    featcache *fc;
    int st = featcache_open(&fc, stats, file, params, paths, n, FRAMES, BINS, extract, ctx, err);
    if (st) return st;
    float *got = petal_malloc((size_t)n * FRAMES * BINS * sizeof *got), want[FRAMES * BINS];
    st = featcache_read(got, fc, 0, n, err);
    for (int i = 0; i < n && !st; i++) {
        expected(want, paths[i]);
        if (memcmp(want, got + (size_t)i * FRAMES * BINS, sizeof want)) st = petal_fail(err, 9, "row %d differs", i);
    }
    // A read of a middle range must match the full read.
    if (!st && n > 3) {
        float part[2 * FRAMES * BINS];
        st = featcache_read(part, fc, 2, 2, err);
        if (!st && memcmp(part, got + 2 * FRAMES * BINS, sizeof part)) st = petal_fail(err, 9, "range read differs");
    }
    free(got);
    featcache_close(fc);
    return st;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

// NPROC children wait at a pipe, then all request the cache at once.
// Returns how many children extracted everything (the rest must extract
// nothing); -1 if any child failed.
static int concurrent_round(const char *file, const char *params, const char *const *paths, int n) {
    int gate[2];
    if (pipe(gate)) return -1;
    pid_t kids[NPROC];
    for (int k = 0; k < NPROC; k++) {
        kids[k] = fork();
        if (kids[k] < 0) return -1;
        if (kids[k] == 0) {
            close(gate[1]);
            char c;
            while (read(gate[0], &c, 1) > 0) {
            }  // EOF = go
            extract_ctx ctx = {.slow_us = 20000};
            featcache_stats s;
            petal_err err = {{0}};
            int st = open_and_verify(&s, file, params, paths, n, &ctx, &err);
            if (st) {
                fprintf(stderr, "child %d: %s\n", k, err.msg);
                _exit(1);
            }
            _exit(s.computed == n && s.built ? 10 : s.computed == 0 && !s.built ? 20 : 2);
        }
    }
    close(gate[0]);
    close(gate[1]);  // releases every child at once
    int builders = 0, bad = 0;
    for (int k = 0; k < NPROC; k++) {
        int status;
        waitpid(kids[k], &status, 0);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (code == 10) builders++;
        else if (code != 20) bad++;
    }
    return bad ? -1 : builders;
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/petal-test-featcache-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(calls_log, sizeof calls_log, "%s/calls.log", tmp);
    char names[NFILES + 1][512];
    const char *paths[NFILES + 1];
    for (int i = 0; i <= NFILES; i++) {
        snprintf(names[i], sizeof names[i], "%s/clip%02d.wav", tmp, i);
        write_audio(names[i], i, 1000 + 37 * i);
        paths[i] = names[i];
    }
    char file[512];
    snprintf(file, sizeof file, "%s/feats.h5", tmp);
    const char *params = "test-extractor v1 frames=7 bins=5";

    // 1. Concurrent first build: exactly one child extracts, NFILES calls total.
    int builders = concurrent_round(file, params, paths, NFILES);
    CHECK(builders == 1, "concurrent build: %d builders (want 1; -1 = a child failed)", builders);
    CHECK(count_calls() == NFILES, "concurrent build: %d extractor calls, want %d", count_calls(), NFILES);

    // 2. Warm cache: nothing computed.
    extract_ctx ctx = {0};
    featcache_stats s;
    petal_err err = {{0}};
    reset_calls();
    int st = open_and_verify(&s, file, params, paths, NFILES, &ctx, &err);
    CHECK(st == 0 && s.computed == 0 && s.reused == NFILES && !s.built, "warm open: st %d computed %d (%s)", st,
          s.computed, err.msg);

    // 3. Relative paths name the same files (keys are absolute).
    char cwd[512];
    if (getcwd(cwd, sizeof cwd) && chdir(tmp) == 0) {
        const char *rel[2] = {"clip00.wav", "./clip01.wav"};
        st = open_and_verify(&s, file, params, rel, 1, &ctx, &err);
        CHECK(st == 0 && s.computed == 0, "relative path: st %d computed %d (%s)", st, s.computed, err.msg);
        if (chdir(cwd)) perror("chdir");
    }

    // 4. A changed file is recomputed, alone.
    write_audio(names[3], 99, 1500);
    reset_calls();
    st = open_and_verify(&s, file, params, paths, NFILES, &ctx, &err);
    CHECK(st == 0 && s.computed == 1 && s.built, "changed file: st %d computed %d (%s)", st, s.computed, err.msg);
    CHECK(count_calls() == 1, "changed file: %d calls", count_calls());

    // 5. A new file is computed alone; a subset needs nothing; rows the request
    // does not name survive a rebuild.
    st = open_and_verify(&s, file, params, paths, NFILES + 1, &ctx, &err);
    CHECK(st == 0 && s.computed == 1, "one more file: st %d computed %d (%s)", st, s.computed, err.msg);
    const char *subset[3] = {paths[12], paths[0], paths[5]};
    st = open_and_verify(&s, file, params, subset, 3, &ctx, &err);
    CHECK(st == 0 && s.computed == 0 && !s.built, "subset: st %d computed %d", st, s.computed);
    write_audio(names[5], 55, 900);  // forces a rebuild for the subset
    st = open_and_verify(&s, file, params, subset, 3, &ctx, &err);
    CHECK(st == 0 && s.computed == 1, "subset rebuild: st %d computed %d (%s)", st, s.computed, err.msg);
    st = open_and_verify(&s, file, params, paths, NFILES + 1, &ctx, &err);
    CHECK(st == 0 && s.computed == 0, "rows outside the subset lost: computed %d", s.computed);

    // 6. A changed parameter invalidates everything, again built by one of
    // several concurrent processes.
    const char *params2 = "test-extractor v1 frames=7 bins=5 dither=1";
    reset_calls();
    builders = concurrent_round(file, params2, paths, NFILES);
    CHECK(builders == 1, "concurrent rebuild after a parameter change: %d builders", builders);
    CHECK(count_calls() == NFILES, "parameter change: %d calls, want %d", count_calls(), NFILES);
    // Another shape is another parameter set too.
    featcache *fc;
    st = featcache_open(&fc, &s, file, params2, paths, 2, FRAMES + 1, BINS, extract, &ctx, &err);
    CHECK(st == 0 && s.computed == 2, "shape change: st %d computed %d", st, s.computed);
    if (!st) featcache_close(fc);

    // 7. Extractor failure: error names the file, the old cache stays, no temp left.
    ctx.fail_on = "clip07.wav";
    write_audio(names[7], 77, 1234);
    st = featcache_open(&fc, &s, file, params2, paths, 2, FRAMES + 1, BINS, extract, &ctx, &err);
    CHECK(st == 0 && s.computed == 0, "cached rows served despite a bad file elsewhere: %d", st);
    if (!st) featcache_close(fc);
    st = featcache_open(&fc, &s, file, params, paths, NFILES, FRAMES, BINS, extract, &ctx, &err);
    CHECK(st == PETAL_EINPUT && strstr(err.msg, "clip07.wav"), "extractor failure: st %d '%s'", st, err.msg);
    ctx.fail_on = NULL;
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%d", file, (int)getpid());
    CHECK(access(tmpname, F_OK) != 0, "temp file left behind after a failure");

    // 8. A missing audio file is an error naming it.
    char ghost[512];
    snprintf(ghost, sizeof ghost, "%s/ghost.wav", tmp);
    const char *gp[1] = {ghost};
    st = featcache_open(&fc, &s, file, params, gp, 1, FRAMES, BINS, extract, &ctx, &err);
    CHECK(st == PETAL_EINPUT && strstr(err.msg, "ghost.wav"), "missing audio: st %d '%s'", st, err.msg);

    // 9. A corrupt cache file is rebuilt, not trusted.
    FILE *f = fopen(file, "wb");
    if (f) {
        fputs("not hdf5", f);
        fclose(f);
    }
    st = open_and_verify(&s, file, params, paths, 4, &ctx, &err);
    CHECK(st == 0 && s.computed == 4, "corrupt cache: st %d computed %d (%s)", st, s.computed, err.msg);

    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_done("test_featcache");
}
