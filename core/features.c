// ==== Trial data: dataset split -> few-shot subset -> cached fbank features =======
#include "core/features.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/audio.h"
#include "core/dataset.h"
#include "core/fbank.h"
#include "core/featcache.h"

#define SAMPLE_RATE 16000

typedef struct {
    fbank_plan *plan;
} extract_ctx;

// Feature cache extractor: decode, resample to 16 kHz, fbank, pad/cut, normalise.
static int extract(float *out, const char *path, void *ctx, petal_err *err) {
    extract_ctx *x = ctx;
    float *wave = NULL;
    size_t n = 0;
    int st = audio_load(&wave, &n, path, SAMPLE_RATE, err);
    if (st) return st;
    st = fbank_features(out, NULL, x->plan, wave, n);
    // Finite but huge samples (a float file scaled by 1e30) overflow the
    // power spectrum: NaN/Inf features would be cached and end the trial as
    // "diverged" far from their cause. Name the file instead.
    size_t all = (size_t)fbank_plan_config(x->plan)->max_length * fbank_plan_config(x->plan)->mel_bins;
    for (size_t i = 0; !st && i < all; i++)
        if (!isfinite(out[i])) {
            float peak = 0;
            for (size_t k = 0; k < n; k++) peak = fabsf(wave[k]) > peak ? fabsf(wave[k]) : peak;
            st = petal_fail(err, PETAL_EINPUT,
                            "%s: features are not finite at frame %zu (largest sample magnitude "
                            "%g; audio is expected in [-1, 1])",
                            path, i / (size_t)fbank_plan_config(x->plan)->mel_bins, (double)peak);
        }
    free(wave);
    return st;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

// The fbank settings of ts's features.
static fbank_config cache_config(const trial_settings *ts) {
    fbank_config fc = fbank_config_ast();
    fc.mel_bins = ts->mel_bins;
    fc.max_length = ts->frames;
    return fc;
}

// The cache file of ts's features, ts->cache/fbank-<hash of params>.h5, and
// params: every extraction parameter (the file is rebuilt when they differ).
static void cache_file(char *file, size_t n, char *params, size_t np, const trial_settings *ts) {
    fbank_config fc = cache_config(ts);
    snprintf(params, np,
             "petal-fbank v2 rate=%d mel=%d frames=%d shift=%g length=%g low=%g high=%g "
             "preemph=%g mean=%g std=%g resampler=libsamplerate-sinc-best",
             SAMPLE_RATE, fc.mel_bins, fc.max_length, fc.frame_shift_ms, fc.frame_length_ms,
             fc.low_freq, fc.high_freq, fc.preemph, fc.norm_mean, fc.norm_std);
    snprintf(file, n, "%s/fbank-%016llx.h5", ts->cache, (unsigned long long)fnv1a(params));
}

int trial_cache_usable(const trial_settings *ts, petal_err *err) {
    if (!strcmp(ts->layout, "synthetic") || !ts->cache[0]) return PETAL_OK;
    char file[TRIAL_PATH_MAX + 64], params[512];
    cache_file(file, sizeof file, params, sizeof params, ts);
    struct stat sb;
    if (!stat(ts->cache, &sb)) {
        if (!S_ISDIR(sb.st_mode)) return petal_fail(err, PETAL_EINPUT, "%s: not a folder", ts->cache);
        if (!access(ts->cache, W_OK)) return PETAL_OK;
        int e = errno;
        // a cache built before and shared read-only serves its rows without writing
        if (!access(file, R_OK)) return PETAL_OK;
        return petal_fail(err, PETAL_EINPUT, "%s: not writable (%s), and it holds no features of these settings (%s)",
                          ts->cache, strerror(e), file);
    }
    return petal_creatable(ts->cache, "the folder", err);  // missing: made when the trial runs
}

static int mkdirs(const char *path, petal_err *err) {
    char buf[TRIAL_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return petal_fail(err, PETAL_EFAIL, "%s: cannot create folder: %s", buf,
                                  strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return PETAL_OK;
}

int trial_data_folds(int *n_folds, const trial_settings *ts, petal_err *err) {
    *n_folds = 1;
    if (!strcmp(ts->layout, "synthetic")) return PETAL_OK;
    dataset ds;
    int st = dataset_load(&ds, dataset_layout_parse(ts->layout), ts->root, ts->split_seed, err);
    if (st) return st;
    *n_folds = ds.n_folds;
    dataset_free(&ds);
    return PETAL_OK;
}

static void synthetic(trial_data *d, const trial_settings *ts) {
    // Learnable synthetic features (core/train.h): 5 classes, 96 / 48 / 48 examples.
    d->K = 5;
    d->classes = petal_calloc((size_t)d->K, sizeof(char *));
    for (int k = 0; k < d->K; k++) {
        d->classes[k] = petal_malloc(24);
        snprintf(d->classes[k], 24, "class_%d", k);
    }
    int n[3] = {96, 48, 48};
    for (int s = 0; s < 3; s++) {
        float *x = petal_falloc((size_t)n[s] * d->frames * d->F);
        int *y = petal_malloc(sizeof(int) * (size_t)n[s]);
        synthetic_features(x, y, n[s], d->frames, d->F, d->K, ts->split_seed * 3 + (uint64_t)s + 1);
        d->split[s] = (feature_set){x, y, n[s]};
    }
}

int trial_data_load(trial_data *d, const trial_settings *ts, int fold, const petal_notes *notes,
                    petal_err *err) {
    memset(d, 0, sizeof *d);
    d->F = ts->mel_bins;
    d->frames = ts->frames;
    d->n_folds = 1;
    if (!strcmp(ts->layout, "synthetic")) {
        synthetic(d, ts);
        return PETAL_OK;
    }
    dataset ds;
    int st = dataset_load(&ds, dataset_layout_parse(ts->layout), ts->root, ts->split_seed, err);
    if (st) return st;
    d->K = ds.K;
    d->n_folds = ds.n_folds;
    d->classes = petal_calloc((size_t)ds.K, sizeof(char *));
    for (int k = 0; k < ds.K; k++) {
        d->classes[k] = petal_malloc(strlen(ds.classes[k]) + 1);
        strcpy(d->classes[k], ds.classes[k]);
    }
    int *idx[3], n[3];
    for (int s = 0; s < 3; s++) idx[s] = petal_malloc(sizeof(int) * (size_t)(ds.N ? ds.N : 1));
    for (int s = 0; s < 3 && !st; s++) st = dataset_split(idx[s], &n[s], &ds, s, fold, err);
    if (!st && ts->shots > 0) {
        int *sub = petal_malloc(sizeof(int) * (size_t)(n[0] ? n[0] : 1));
        int *counts = petal_malloc(sizeof(int) * (size_t)ds.K);
        n[0] = dataset_fewshot(sub, counts, &ds, idx[0], n[0], ts->shots, ts->seed,
                               ts->fewshot_first ? FEWSHOT_FIRST : FEWSHOT_UNIFORM);
        char msg[1024];
        if (dataset_fewshot_short(msg, sizeof msg, &ds, counts, ts->shots))
            petal_note(notes, "few-shot: classes with fewer than %d training examples: %s",
                       ts->shots, msg);
        free(idx[0]);
        idx[0] = sub;
        free(counts);
    }
    if (!st && n[0] == 0)
        st = petal_fail(err, PETAL_EINPUT, "%s: fold %d has no training examples", ts->root, fold);
    if (!st && n[2] == 0)
        st = petal_fail(err, PETAL_EINPUT, "%s: fold %d has no test examples", ts->root, fold);
    // One cache request for the three splits, in split order.
    int total = n[0] + n[1] + n[2];
    const char **paths = petal_malloc(sizeof(char *) * (size_t)(total ? total : 1));
    for (int s = 0, k = 0; s < 3 && !st; s++)
        for (int i = 0; i < n[s]; i++) paths[k++] = ds.items[idx[s][i]].path;
    fbank_config fc = cache_config(ts);
    char params[512], file[TRIAL_PATH_MAX + 64];
    cache_file(file, sizeof file, params, sizeof params, ts);
    extract_ctx ctx = {0};
    featcache *cache = NULL;
    if (!st) st = mkdirs(ts->cache, err);
    if (!st && !(ctx.plan = fbank_plan_create(&fc, err))) st = PETAL_EFAIL;
    featcache_stats stats = {0};
    double t0 = petal_now();
    if (!st)
        st = featcache_open(&cache, &stats, file, params, paths, total, fc.max_length,
                            fc.mel_bins, extract, &ctx, err);
    if (!st)
        petal_note(notes, "features: %d clips (%d computed, %d from the cache %s) in %.1f s", total,
                   stats.computed, stats.reused, file, petal_now() - t0);
    size_t ex = (size_t)fc.max_length * fc.mel_bins;
    for (int s = 0, first = 0; s < 3 && !st; first += n[s], s++) {
        float *x = petal_falloc((size_t)(n[s] ? n[s] : 1) * ex);
        int *y = petal_malloc(sizeof(int) * (size_t)(n[s] ? n[s] : 1));
        for (int i = 0; i < n[s]; i++) y[i] = ds.items[idx[s][i]].label;
        if (n[s]) st = featcache_read(x, cache, first, n[s], err);
        d->split[s] = (feature_set){x, y, n[s]};
    }
    if (cache) featcache_close(cache);
    if (ctx.plan) fbank_plan_destroy(ctx.plan);
    free(paths);
    for (int s = 0; s < 3; s++) free(idx[s]);
    dataset_free(&ds);
    if (st) trial_data_free(d);
    return st;
}

void trial_data_free(trial_data *d) {
    for (int s = 0; s < 3; s++) free((void *)d->split[s].x), free((void *)d->split[s].y);
    for (int k = 0; d->classes && k < d->K; k++) free(d->classes[k]);
    free(d->classes);
    memset(d, 0, sizeof *d);
}
