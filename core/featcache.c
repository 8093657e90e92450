// Feature cache: HDF5 file of (R, frames, bins) features keyed by audio path,
// size and mtime, built under an flock and published by rename().
#include "core/featcache.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/h5.h"

// ---- keys ------------------------------------------------------------------------
// A set of keys: R absolute paths in one NUL-separated blob, with size and
// mtime each, and an open-addressing hash from path to row.

typedef struct {
    int R;
    char *blob;         // R NUL-terminated paths back to back
    size_t blob_len;
    const char **path;  // (R) into blob
    int64_t *size;      // (R) bytes
    int64_t *mtime;     // (R) ns since the epoch
    int *slot;          // (hcap) row + 1, 0 = empty
    size_t hcap;
} keyset;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void keyset_index(keyset *k) {
    k->path = petal_malloc((size_t)(k->R ? k->R : 1) * sizeof *k->path);
    const char *p = k->blob;
    for (int r = 0; r < k->R; r++) {
        k->path[r] = p;
        p += strlen(p) + 1;
    }
    k->hcap = 16;
    while (k->hcap < 2 * (size_t)k->R) k->hcap *= 2;
    k->slot = petal_calloc(k->hcap, sizeof *k->slot);
    for (int r = 0; r < k->R; r++) {
        size_t h = hash_str(k->path[r]) & (k->hcap - 1);
        while (k->slot[h]) {
            if (!strcmp(k->path[k->slot[h] - 1], k->path[r])) break;  // duplicate: keep first
            h = (h + 1) & (k->hcap - 1);
        }
        if (!k->slot[h]) k->slot[h] = r + 1;
    }
}

// Row of path, or -1.
static int keyset_find(const keyset *k, const char *path) {
    if (!k->hcap) return -1;
    size_t h = hash_str(path) & (k->hcap - 1);
    while (k->slot[h]) {
        int r = k->slot[h] - 1;
        if (!strcmp(k->path[r], path)) return r;
        h = (h + 1) & (k->hcap - 1);
    }
    return -1;
}

static void keyset_free(keyset *k) {
    free(k->blob);
    free(k->path);
    free(k->size);
    free(k->mtime);
    free(k->slot);
    memset(k, 0, sizeof *k);
}

static int stat_key(int64_t *size, int64_t *mtime, const char *path) {
    struct stat st;
    if (stat(path, &st)) return -1;
    *size = (int64_t)st.st_size;
    *mtime = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    return 0;
}

// Keys of the requested paths (absolute, stat'ed now).
static int keyset_from_paths(keyset *k, const char *const *paths, int n, petal_err *err) {
    memset(k, 0, sizeof *k);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return petal_fail(err, PETAL_EFAIL, "featcache: getcwd failed");
    size_t cl = strlen(cwd), total = 0;
    for (int i = 0; i < n; i++) total += strlen(paths[i]) + (paths[i][0] == '/' ? 1 : cl + 2);
    k->R = n;
    k->blob = petal_malloc(total ? total : 1);
    k->size = petal_malloc((size_t)n * sizeof *k->size);
    k->mtime = petal_malloc((size_t)n * sizeof *k->mtime);
    char *w = k->blob;
    for (int i = 0; i < n; i++) {
        if (paths[i][0] == '/') w += sprintf(w, "%s", paths[i]) + 1;
        else w += sprintf(w, "%s/%s", cwd, paths[i]) + 1;
        if (stat_key(&k->size[i], &k->mtime[i], paths[i])) {
            int e = errno;
            keyset_free(k);
            return petal_fail(err, PETAL_EINPUT, "%s: cannot stat (%s)", paths[i], strerror(e));
        }
    }
    k->blob_len = (size_t)(w - k->blob);
    keyset_index(k);
    return PETAL_OK;
}

// ---- HDF5 helpers ------------------------------------------------------------------

// File access properties: HDF5's own file locking off. Files are immutable once
// renamed into place and writers use private temp names, so it adds nothing,
// and it fails on file systems without flock (some NFS / Lustre mounts).
static hid_t fapl_nolock(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(fapl, 0, 1);
#endif
    return fapl;
}

static int write_1d(hid_t f, const char *name, hid_t type, const void *data, hsize_t n) {
    hid_t sp = H5Screate_simple(1, &n, NULL);
    if (sp < 0) return -1;
    hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = d < 0 ? -1 : H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return e < 0 ? -1 : 0;
}

// Reads a 1-D dataset of known element type; *n gets its length, *out is malloc'ed.
static int read_1d(void **out, hsize_t *n, hid_t f, const char *name, hid_t type, size_t elem) {
    *out = NULL;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, n, NULL) == 1;
    if (sp >= 0) H5Sclose(sp);
    if (ok) {
        *out = petal_malloc(*n ? *n * elem : 1);
        ok = H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) >= 0;
    }
    H5Dclose(d);
    if (!ok) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

// An opened cache file whose params and shape match: its keys and feats.
typedef struct {
    hid_t file, feats;
    keyset keys;
} cachefile;

static void cachefile_close(cachefile *c) {
    if (c->feats > 0) H5Dclose(c->feats);  // HDF5 ids are positive; 0 = never opened
    if (c->file > 0) H5Fclose(c->file);
    keyset_free(&c->keys);
    c->file = c->feats = -1;
}

// Opens file if it exists and matches params and (frames, bins). Returns 0 on
// a match; -1 otherwise (a missing, unreadable, foreign or stale-params file
// is simply not a cache we can use; HDF5's error printing is off meanwhile).
static int cachefile_open(cachefile *c, const char *file, const char *params, int frames, int bins) {
    memset(c, 0, sizeof *c);
    c->file = c->feats = -1;
    struct stat st;
    if (stat(file, &st)) return -1;
    h5_quiet quiet = h5_quiet_begin();  // petal reports HDF5 errors itself
    int ok = 0;
    hid_t fapl = fapl_nolock();
    c->file = fapl < 0 ? -1 : H5Fopen(file, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    char *p = c->file >= 0 ? h5_get_str(c->file, "params") : NULL;
    if (p && !strcmp(p, params) && H5Lexists(c->file, "feats", H5P_DEFAULT) > 0) {
        c->feats = H5Dopen2(c->file, "feats", H5P_DEFAULT);
        hid_t sp = c->feats >= 0 ? H5Dget_space(c->feats) : -1;
        hsize_t dims[3];
        if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 3 &&
            H5Sget_simple_extent_dims(sp, dims, NULL) == 3 && dims[1] == (hsize_t)frames &&
            dims[2] == (hsize_t)bins) {
            hsize_t nb, ns, nm;
            void *blob, *sz, *mt;
            int r1 = read_1d(&blob, &nb, c->file, "paths", H5T_NATIVE_UCHAR, 1);
            int r2 = read_1d(&sz, &ns, c->file, "sizes", H5T_NATIVE_INT64, sizeof(int64_t));
            int r3 = read_1d(&mt, &nm, c->file, "mtimes", H5T_NATIVE_INT64, sizeof(int64_t));
            c->keys.blob = blob;
            c->keys.size = sz;
            c->keys.mtime = mt;
            if (!r1 && !r2 && !r3 && ns == dims[0] && nm == dims[0] && nb > 0 &&
                ((char *)blob)[nb - 1] == '\0') {
                // The blob must hold exactly R strings.
                size_t cnt = 0;
                for (hsize_t i = 0; i < nb; i++) cnt += ((char *)blob)[i] == '\0';
                if (cnt == dims[0]) {
                    c->keys.R = (int)dims[0];
                    c->keys.blob_len = nb;
                    keyset_index(&c->keys);
                    ok = 1;
                }
            }
        }
        if (sp >= 0) H5Sclose(sp);
    }
    free(p);
    h5_quiet_end(quiet);
    if (!ok) {
        cachefile_close(c);
        return -1;
    }
    return 0;
}

// rows[i] = row of c holding a valid entry for requested key i, or -1.
// Returns how many are missing.
static int match_rows(int *rows, const cachefile *c, const keyset *req) {
    int missing = 0;
    for (int i = 0; i < req->R; i++) {
        int r = keyset_find(&c->keys, req->path[i]);
        if (r >= 0 && (c->keys.size[r] != req->size[i] || c->keys.mtime[r] != req->mtime[i])) r = -1;
        rows[i] = r;
        missing += r < 0;
    }
    return missing;
}

static int rw_row(hid_t d, int row, float *buf, int frames, int bins, int write) {
    hsize_t start[3] = {(hsize_t)row, 0, 0}, count[3] = {1, (hsize_t)frames, (hsize_t)bins};
    hid_t fs = H5Dget_space(d);
    if (fs < 0) return -1;
    hid_t ms = H5Screate_simple(3, count, NULL);
    int st = (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) ? -1 : 0;
    if (!st)
        st = (write ? H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf)
                    : H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf)) < 0 ? -1 : 0;
    if (ms >= 0) H5Sclose(ms);
    H5Sclose(fs);
    return st;
}

// ---- building ------------------------------------------------------------------------

// Writes tmp with the requested rows first (in request order, duplicates once),
// then the old file's other rows whose audio is unchanged. Rows valid in old
// (which may be NULL) are copied, the rest extracted.
static int build(const char *tmp, const char *params, const keyset *req, const char *const *paths,
                 const cachefile *old, int frames, int bins, feat_extract_fn extract, void *ctx,
                 int *computed, petal_err *err) {
    // Plan: new row r comes from source[r] = old row, or -1 - i (extract request i).
    int maxR = req->R + (old ? old->keys.R : 0);
    int *source = petal_malloc((size_t)maxR * sizeof *source);
    const char **rpath = petal_malloc((size_t)maxR * sizeof *rpath);
    int64_t *rsize = petal_malloc((size_t)maxR * sizeof *rsize);
    int64_t *rmtime = petal_malloc((size_t)maxR * sizeof *rmtime);
    char *taken = petal_calloc((size_t)(old ? old->keys.R : 0) + 1, 1);
    int R = 0;
    for (int i = 0; i < req->R; i++) {
        if (keyset_find(req, req->path[i]) != i) continue;  // repeated path: first wins
        int o = old ? keyset_find(&old->keys, req->path[i]) : -1;
        if (o >= 0) taken[o] = 1;
        if (o >= 0 && (old->keys.size[o] != req->size[i] || old->keys.mtime[o] != req->mtime[i])) o = -1;
        source[R] = o >= 0 ? o : -1 - i;
        rpath[R] = req->path[i];
        rsize[R] = req->size[i];
        rmtime[R] = req->mtime[i];
        R++;
    }
    for (int o = 0; old && o < old->keys.R; o++) {
        int64_t sz, mt;
        if (taken[o] || stat_key(&sz, &mt, old->keys.path[o]) || sz != old->keys.size[o] ||
            mt != old->keys.mtime[o])
            continue;
        source[R] = o;
        rpath[R] = old->keys.path[o];
        rsize[R] = sz;
        rmtime[R] = mt;
        R++;
    }

    int st = PETAL_OK;
    float *buf = petal_calloc((size_t)frames * bins, sizeof *buf);  // zeroed: no uninitialised byte reaches the file
    hid_t fapl = fapl_nolock();
    hid_t f = fapl < 0 ? -1 : H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    hid_t d = -1;
    if (f < 0) {
        st = petal_fail(err, PETAL_EFAIL, "%s: cannot create HDF5 file", tmp);
    } else {
        size_t blob_len = 0;
        for (int r = 0; r < R; r++) blob_len += strlen(rpath[r]) + 1;
        char *blob = petal_malloc(blob_len), *w = blob;
        for (int r = 0; r < R; r++) w += sprintf(w, "%s", rpath[r]) + 1;
        hsize_t dims[3] = {(hsize_t)R, (hsize_t)frames, (hsize_t)bins};
        hid_t sp = H5Screate_simple(3, dims, NULL);
        d = sp < 0 ? -1 : H5Dcreate2(f, "feats", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (sp >= 0) H5Sclose(sp);
        if (d < 0 || h5_put_str(f, "params", params) ||
            write_1d(f, "paths", H5T_NATIVE_UCHAR, blob, (hsize_t)blob_len) ||
            write_1d(f, "sizes", H5T_NATIVE_INT64, rsize, (hsize_t)R) ||
            write_1d(f, "mtimes", H5T_NATIVE_INT64, rmtime, (hsize_t)R))
            st = petal_fail(err, PETAL_EFAIL, "%s: HDF5 write failed", tmp);
        free(blob);
    }
    for (int r = 0; r < R && !st; r++) {
        if (source[r] >= 0) {
            if (rw_row(old->feats, source[r], buf, frames, bins, 0))
                st = petal_fail(err, PETAL_EFAIL, "featcache: HDF5 read of a cached row failed");
        } else {
            int i = -1 - source[r];
            st = extract(buf, paths[i], ctx, err);
            (*computed)++;
        }
        if (!st && rw_row(d, r, buf, frames, bins, 1))
            st = petal_fail(err, PETAL_EFAIL, "%s: HDF5 write failed", tmp);
    }
    if (d >= 0) H5Dclose(d);
    if (f >= 0 && H5Fclose(f) < 0 && !st) st = petal_fail(err, PETAL_EFAIL, "%s: HDF5 close failed", tmp);
    free(buf);
    free(source);
    free(rpath);
    free(rsize);
    free(rmtime);
    free(taken);
    return st;
}

// Removes <file>.tmp.<pid> files whose builder process has died (killed
// mid-build); a live builder's file stays. Called under the cache's lock.
static void prune_dead_builds(const char *file) {
    const char *slash = strrchr(file, '/'), *base = slash ? slash + 1 : file;
    char dir[4200], prefix[4200];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == file) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - file), file);
    snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    size_t pl = strlen(prefix);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[8400];
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, pl)) continue;
        char *end;
        long pid = strtol(e->d_name + pl, &end, 10);
        if (pid <= 0 || *end || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

// ---- public API ------------------------------------------------------------------------

struct featcache {
    cachefile c;
    int n, frames, bins;
    int *rows;  // (n) row of the file holding request i
};

int featcache_open(featcache **out, featcache_stats *stats, const char *file, const char *params,
                   const char *const *paths, int n, int frames, int bins, feat_extract_fn extract,
                   void *ctx, petal_err *err) {
    PETAL_ASSERT(n >= 1 && frames >= 1 && bins >= 1);
    *out = NULL;
    featcache_stats sdummy;
    if (!stats) stats = &sdummy;
    memset(stats, 0, sizeof *stats);
    keyset req;
    int st = keyset_from_paths(&req, paths, n, err);
    if (st) return st;
    featcache *fc = petal_calloc(1, sizeof *fc);
    fc->n = n;
    fc->frames = frames;
    fc->bins = bins;
    fc->rows = petal_malloc((size_t)n * sizeof *fc->rows);

    // Fast path: a valid cache needs no lock.
    int have = cachefile_open(&fc->c, file, params, frames, bins) == 0;
    if (have && match_rows(fc->rows, &fc->c, &req) == 0) goto done;
    if (have) cachefile_close(&fc->c);

    char lockpath[4200], tmp[4200];
    snprintf(lockpath, sizeof lockpath, "%s.lock", file);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", file, (long)getpid());
    int lfd = petal_lock(lockpath, err);
    if (lfd < 0) {
        st = PETAL_EFAIL;
        goto fail;
    }
    prune_dead_builds(file);
    // Someone may have built it while we waited.
    have = cachefile_open(&fc->c, file, params, frames, bins) == 0;
    if (!have || match_rows(fc->rows, &fc->c, &req) != 0) {
        st = build(tmp, params, &req, paths, have ? &fc->c : NULL, frames, bins, extract, ctx,
                   &stats->computed, err);
        if (have) cachefile_close(&fc->c);
        if (!st && rename(tmp, file))
            st = petal_fail(err, PETAL_EFAIL, "%s: cannot rename to %s (%s)", tmp, file, strerror(errno));
        if (st) unlink(tmp);
        else stats->built = 1;
        if (!st && (cachefile_open(&fc->c, file, params, frames, bins) ||
                    match_rows(fc->rows, &fc->c, &req) != 0))
            st = petal_fail(err, PETAL_EFAIL, "%s: cache unreadable right after building it", file);
    }
    close(lfd);  // releases the flock
    if (st) goto fail;

done:
    stats->reused = n - stats->computed;
    if (stats->reused < 0) stats->reused = 0;
    keyset_free(&req);
    *out = fc;
    return PETAL_OK;
fail:
    keyset_free(&req);
    featcache_close(fc);
    return st;
}

int featcache_read(float *out, featcache *fc, int first, int count, petal_err *err) {
    PETAL_ASSERT(first >= 0 && count >= 0 && first + count <= fc->n);
    size_t row = (size_t)fc->frames * fc->bins;
    int i = first, end = first + count;
    while (i < end) {
        // Consecutive requests stored in consecutive rows are one read.
        int j = i + 1;
        while (j < end && fc->rows[j] == fc->rows[j - 1] + 1) j++;
        hsize_t start[3] = {(hsize_t)fc->rows[i], 0, 0},
                cnt[3] = {(hsize_t)(j - i), (hsize_t)fc->frames, (hsize_t)fc->bins};
        hid_t fs = H5Dget_space(fc->c.feats);
        hid_t ms = H5Screate_simple(3, cnt, NULL);
        int bad = fs < 0 || ms < 0 ||
                  H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0 ||
                  H5Dread(fc->c.feats, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT,
                          out + (size_t)(i - first) * row) < 0;
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
        if (bad) return petal_fail(err, PETAL_EFAIL, "featcache: HDF5 read of rows %d..%d failed", i, j - 1);
        i = j;
    }
    return PETAL_OK;
}

void featcache_close(featcache *fc) {
    if (!fc) return;
    cachefile_close(&fc->c);
    free(fc->rows);
    free(fc);
}
