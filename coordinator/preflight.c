// ==== Preflight: RUN, its results.h5 and every trial's data paths, before any write ====
#include "coordinator/preflight.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/features.h"
#include "core/h5.h"
#include "core/trial.h"
#include "results/store.h"

// results.h5 in RUN: petal's, of this format. One that is not HDF5 (truncated,
// damaged) in a RUN that is a petal store is rebuilt from the trial records;
// in a folder that is not, it is someone else's file and stays untouched.
static int check_results(const char *run, const petal_notes *notes, petal_err *err) {
    char path[4200], mark[4200];
    snprintf(path, sizeof path, "%s/results.h5", run);
    if (access(path, F_OK)) return PETAL_OK;
    snprintf(mark, sizeof mark, "%s/created", run);
    int ours = !access(mark, F_OK);
    h5_quiet q = h5_quiet_begin();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *fmt = f >= 0 ? h5_get_str(f, "format") : NULL;
    if (f >= 0) H5Fclose(f);
    h5_quiet_end(q);
    int st = PETAL_OK;
    if (fmt && strcmp(fmt, RESULTS_FORMAT))
        st = petal_fail(err, PETAL_EINPUT,
                        "%s: a results store of format '%.100s' (this petal writes '%s'): run it with the petal "
                        "that made it, or give another --out",
                        path, fmt, RESULTS_FORMAT);
    else if (!fmt && !ours)
        st = petal_fail(err, PETAL_EINPUT, "%s: %s, and %s is not a petal store: petal will not replace it (give "
                        "another --out)", path, f >= 0 ? "not a petal results store" : "not an HDF5 file", run);
    else if (!fmt)
        petal_note(notes, "%s: %s; rebuilt from the trial records", path,
                   f >= 0 ? "not a petal results store" : "not an HDF5 file (truncated or damaged)");
    free(fmt);
    return st;
}

int coord_preflight_run(const char *run, const petal_notes *notes, petal_err *err) {
    struct stat sb;
    if (stat(run, &sb)) {
        if (errno != ENOENT && errno != ENOTDIR) return petal_fail(err, PETAL_EINPUT, "%s: %s", run, strerror(errno));
        return petal_creatable(run, "the sweep's folder", err);
    }
    if (!S_ISDIR(sb.st_mode))
        return petal_fail(err, PETAL_EINPUT, "%s: not a folder (--out names the folder of the sweep's store)", run);
    if (access(run, W_OK)) return petal_fail(err, PETAL_EINPUT, "%s: not writable (%s)", run, strerror(errno));
    char path[4200];
    snprintf(path, sizeof path, "%s/trials", run);
    if (!stat(path, &sb) && S_ISDIR(sb.st_mode) && access(path, W_OK))
        return petal_fail(err, PETAL_EINPUT, "%s: not writable (%s)", path, strerror(errno));
    return check_results(run, notes, err);
}

// "file:line:column" of key in trial t (where the spec set it), else the spec's name.
static void where(char *out, size_t n, const sweep_spec *spec, const sweep_trial *t, const char *key) {
    const config_entry *e = config_find(&t->kv, key);
    if (e && e->line) snprintf(out, n, "%s:%d:%d", e->src, e->line, e->col);
    else snprintf(out, n, "%s", spec->path);
}

// A set of the checks already made (XXH3 of what was checked): a path shared
// by every trial is looked at once, 100,000 trials or not.
typedef struct {
    uint64_t *h;
    size_t cap;
} seen_set;

static int first_time(seen_set *s, const char *kind, const char *path, int a, int b) {
    char key[TRIAL_PATH_MAX + 64];
    int len = snprintf(key, sizeof key, "%s\n%s\n%d\n%d", kind, path, a, b);
    uint64_t h = XXH3_64bits(key, (size_t)len) | 1;  // never 0 (the empty mark)
    size_t j = h & (s->cap - 1);
    while (s->h[j] && s->h[j] != h) j = (j + 1) & (s->cap - 1);
    if (s->h[j]) return 0;
    s->h[j] = h;
    return 1;
}

static int check_trials(const sweep_spec *spec, petal_err *err) {
    seen_set seen = {NULL, 64};
    while (seen.cap < 8 * (size_t)spec->n) seen.cap *= 2;  // three checks a trial at most, under half full
    seen.h = petal_calloc(seen.cap, sizeof *seen.h);
    int st = PETAL_OK;
    char at[512];
    for (int i = 0; !st && i < spec->n; i++) {
        const sweep_trial *t = &spec->trials[i];
        trial_settings ts;
        petal_err e;
        if (trial_settings_resolve(&ts, &t->kv, NULL) || ts.drill) continue;  // (checked when the spec loaded)
        struct stat sb;
        if (strcmp(ts.layout, "synthetic") && first_time(&seen, "root", ts.root, 0, 0) && stat(ts.root, &sb)) {
            where(at, sizeof at, spec, t, "dataset.root");
            st = petal_fail(err, PETAL_EINPUT, "%s: dataset.root %s: %s", at, ts.root, strerror(errno));
        }
        if (!st && first_time(&seen, "cache", ts.cache, ts.mel_bins, ts.frames) && trial_cache_usable(&ts, &e)) {
            int set = config_find(&t->kv, "features.cache") != NULL;
            where(at, sizeof at, spec, t, set ? "features.cache" : "dataset.root");
            st = petal_fail(err, PETAL_EINPUT, "%s: features.cache%s %s", at,
                            set ? "" : " (by default dataset.root/.petal-cache)", e.msg);
        }
        if (!st && ts.backbone[0] && first_time(&seen, "backbone", ts.backbone, 0, 0) && access(ts.backbone, R_OK)) {
            where(at, sizeof at, spec, t, "model.backbone");
            st = petal_fail(err, PETAL_EINPUT, "%s: model.backbone %s: %s", at, ts.backbone, strerror(errno));
        }
    }
    free(seen.h);
    return st;
}

int coord_preflight(const sweep_spec *spec, const char *run, const petal_notes *notes, petal_err *err) {
    int st = coord_preflight_run(run, notes, err);
    return st ? st : check_trials(spec, err);
}
