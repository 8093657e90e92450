// ==== Trial records: pack / unpack for messages, the per-trial record file ========
#include "results/record.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/h5.h"
#include "core/version.h"

static const char *const status_names[RS_COUNT] = {"pending", "running", "done",
                                                   "failed",  "stopped", "paused"};

const char *results_status_name(int status) {
    return status >= 0 && status < RS_COUNT ? status_names[status] : "unknown";
}

int results_status_parse(const char *name) {
    for (int i = 0; i < RS_COUNT; i++)
        if (!strcmp(name, status_names[i])) return i;
    return -1;
}

void results_record_free(results_record *rec) {
    free(rec->config);
    rec->config = NULL;
    trial_record_free(&rec->r);
}

void results_record_stamp(results_record *rec) {
    if (gethostname(rec->host, sizeof rec->host)) snprintf(rec->host, sizeof rec->host, "unknown");
    rec->host[sizeof rec->host - 1] = 0;
    snprintf(rec->version, sizeof rec->version, "%s", petal_version());
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(rec->finished_at, sizeof rec->finished_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

// ---- packing: fields in a fixed order, native byte order (ranks of one job) ------
typedef struct {
    char *p;
    size_t n, cap;
} packer;

static void put(packer *w, const void *v, size_t n) {
    w->p = petal_grow(w->p, &w->cap, w->n + n, 1);
    if (n) memcpy(w->p + w->n, v, n);  // v may be NULL when n is 0 (a fold without history)
    w->n += n;
}
static void put_i(packer *w, long long v) { put(w, &v, sizeof v); }
static void put_d(packer *w, double v) { put(w, &v, sizeof v); }
static void put_s(packer *w, const char *s) {
    size_t n = s ? strlen(s) : 0;
    put_i(w, (long long)n);
    put(w, s ? s : "", n);
}

#define MAGIC "petal-record-1"

void results_record_pack(char **buf, size_t *len, const results_record *rec) {
    packer w = {0};
    const trial_record *r = &rec->r;
    put(&w, MAGIC, sizeof MAGIC);
    put_s(&w, rec->id), put_i(&w, rec->status), put_s(&w, rec->config), put_i(&w, rec->attempts);
    put_s(&w, rec->error), put_s(&w, rec->host), put_s(&w, rec->version), put_s(&w, rec->finished_at);
    put_i(&w, rec->epochs_budget), put_s(&w, rec->decision), put_i(&w, rec->retryable);
    put_i(&w, r->status), put_s(&w, r->error), put_s(&w, r->label);
    put_d(&w, r->test_acc_mean), put_d(&w, r->test_acc_std), put_d(&w, r->best_valid_acc_mean);
    put_d(&w, r->seconds), put_i(&w, (long long)r->trainable), put_i(&w, (long long)r->total);
    put_d(&w, r->peak_rss_mib), put_i(&w, r->n_folds);
    for (int i = 0; i < r->n_folds; i++) {
        const fold_record *f = &r->folds[i];
        put_i(&w, f->fold), put_i(&w, f->status), put_s(&w, f->error), put_i(&w, f->best_epoch);
        put_i(&w, f->epochs), put_d(&w, f->best_valid_acc), put_d(&w, f->test_acc);
        put_d(&w, f->test_loss), put_d(&w, f->seconds);
        put(&w, f->history, sizeof *f->history * (size_t)f->epochs);
    }
    *buf = w.p;
    *len = w.n;
}

typedef struct {
    const char *p;
    size_t n, at;
    int bad;
} unpacker;

static void get(unpacker *r, void *v, size_t n) {
    if (r->bad || n > r->n - r->at) {
        r->bad = 1;
        memset(v, 0, n);
        return;
    }
    memcpy(v, r->p + r->at, n);
    r->at += n;
}
static long long get_i(unpacker *r) {
    long long v;
    get(r, &v, sizeof v);
    return v;
}
static double get_d(unpacker *r) {
    double v;
    get(r, &v, sizeof v);
    return v;
}
// Into a fixed buffer (cut to fit) or, with cap 0, a malloc'd string.
static char *get_s(unpacker *r, char *out, size_t cap) {
    long long n = get_i(r);
    if (n < 0 || (size_t)n > r->n - r->at) r->bad = 1;
    if (r->bad) {
        if (out) out[0] = 0;
        return out;
    }
    if (!out) out = petal_malloc((size_t)n + 1), cap = (size_t)n + 1;
    size_t keep = (size_t)n < cap ? (size_t)n : cap - 1;
    memcpy(out, r->p + r->at, keep);
    out[keep] = 0;
    r->at += (size_t)n;
    return out;
}

int results_record_unpack(results_record *rec, const char *buf, size_t len, petal_err *err) {
    memset(rec, 0, sizeof *rec);
    unpacker u = {buf, len, 0, 0};
    char magic[sizeof MAGIC];
    get(&u, magic, sizeof magic);
    if (u.bad || memcmp(magic, MAGIC, sizeof magic))
        return petal_fail(err, PETAL_EFAIL, "not a petal trial record (%zu bytes)", len);
    trial_record *r = &rec->r;
    get_s(&u, rec->id, sizeof rec->id);
    rec->status = (int)get_i(&u);
    rec->config = get_s(&u, NULL, 0);
    rec->attempts = (int)get_i(&u);
    get_s(&u, rec->error, sizeof rec->error), get_s(&u, rec->host, sizeof rec->host);
    get_s(&u, rec->version, sizeof rec->version);
    get_s(&u, rec->finished_at, sizeof rec->finished_at);
    rec->epochs_budget = (int)get_i(&u);
    get_s(&u, rec->decision, sizeof rec->decision);
    rec->retryable = (int)get_i(&u);
    r->status = (trial_status)get_i(&u);
    get_s(&u, r->error, sizeof r->error), get_s(&u, r->label, sizeof r->label);
    r->test_acc_mean = get_d(&u), r->test_acc_std = get_d(&u), r->best_valid_acc_mean = get_d(&u);
    r->seconds = get_d(&u), r->trainable = (size_t)get_i(&u), r->total = (size_t)get_i(&u);
    r->peak_rss_mib = get_d(&u);
    long long nf = get_i(&u);
    if (nf < 0 || nf > 1000) u.bad = 1;
    if (!u.bad && nf) r->folds = petal_calloc((size_t)nf, sizeof *r->folds);
    for (long long i = 0; i < nf && !u.bad; i++) {
        fold_record *f = &r->folds[r->n_folds++];
        f->fold = (int)get_i(&u), f->status = (trial_status)get_i(&u);
        get_s(&u, f->error, sizeof f->error);
        f->best_epoch = (int)get_i(&u), f->epochs = (int)get_i(&u);
        f->best_valid_acc = get_d(&u), f->test_acc = get_d(&u), f->test_loss = get_d(&u);
        f->seconds = get_d(&u);
        if (f->epochs < 0 || (size_t)f->epochs > (u.n - u.at) / sizeof *f->history) {
            u.bad = 1;
            f->epochs = 0;
            break;
        }
        f->history = petal_calloc((size_t)(f->epochs ? f->epochs : 1), sizeof *f->history);
        get(&u, f->history, sizeof *f->history * (size_t)f->epochs);
    }
    if (u.bad || rec->status < 0 || rec->status >= RS_COUNT) {
        results_record_free(rec);
        return petal_fail(err, PETAL_EFAIL, "a truncated or damaged trial record (%zu bytes)", len);
    }
    return PETAL_OK;
}

// ---- the record file ------------------------------------------------------------
#define FORMAT "petal-record 1"

int results_record_write(const results_record *rec, const char *path, petal_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    h5_quiet q = h5_quiet_begin();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int bad = f < 0;
    const trial_record *r = &rec->r;
    if (!bad) {
        bad |= h5_put_str(f, "format", FORMAT) | h5_put_str(f, "id", rec->id);
        bad |= h5_put_str(f, "status", results_status_name(rec->status));
        bad |= h5_put_str(f, "config", rec->config ? rec->config : "");
        bad |= h5_put_str(f, "label", r->label) | h5_put_str(f, "error", rec->error);
        bad |= h5_put_str(f, "host", rec->host) | h5_put_str(f, "version", rec->version);
        bad |= h5_put_str(f, "finished_at", rec->finished_at) | h5_put_str(f, "decision", rec->decision);
        bad |= h5_put_i64(f, "attempts", rec->attempts) | h5_put_i64(f, "epochs_budget", rec->epochs_budget);
        bad |= h5_put_i64(f, "n_folds", r->n_folds) | h5_put_i64(f, "trainable", (long long)r->trainable);
        bad |= h5_put_i64(f, "total", (long long)r->total);
        double dv[5] = {r->test_acc_mean, r->test_acc_std, r->best_valid_acc_mean, r->seconds, r->peak_rss_mib};
        const char *dn[5] = {"test_acc", "test_acc_std", "best_valid_acc", "seconds", "peak_rss_mib"};
        for (int i = 0; i < 5; i++) bad |= h5_put_attr(f, dn[i], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &dv[i]);
        int rows = 0;
        for (int i = 0; i < r->n_folds; i++) rows += r->folds[i].epochs;
        double *folds = petal_calloc((size_t)(r->n_folds ? r->n_folds : 1) * 8, sizeof *folds);
        double *hist = petal_calloc((size_t)(rows ? rows : 1) * 8, sizeof *hist);
        for (int i = 0, k = 0; i < r->n_folds; i++) {
            const fold_record *fr = &r->folds[i];
            double row[8] = {fr->fold, fr->status, fr->best_epoch, fr->epochs,
                             fr->best_valid_acc, fr->test_acc, fr->test_loss, fr->seconds};
            memcpy(folds + 8 * i, row, sizeof row);
            for (int e = 0; e < fr->epochs; e++, k++) {
                const epoch_record *h = &fr->history[e];
                double hr[8] = {fr->fold, e + 1, h->train_loss, h->train_acc, h->valid_loss,
                                h->valid_acc, h->lr, h->seconds};
                memcpy(hist + 8 * k, hr, sizeof hr);
            }
        }
        hsize_t fd[2] = {(hsize_t)r->n_folds, 8}, hd[2] = {(hsize_t)rows, 8};
        bad |= h5_put_data(f, "folds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, folds, 2, fd);
        bad |= h5_put_data(f, "history", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, hist, 2, hd);
        free(folds), free(hist);
        bad |= H5Fclose(f) < 0;
    }
    h5_quiet_end(q);
    // Renamed without file_commit's fsyncs (they cost 0.3-5 ms a trial, most of
    // a noop trial's time): the rename alone makes the record survive a kill of
    // any process; the store makes records durable against power loss in groups
    // (results_store_flush: one syncfs before each results.h5 rebuild and at the end).
    if (!bad && rename(tmp, path)) bad = 1;
    if (bad) {
        int e = errno;
        unlink(tmp);
        return petal_fail(err, PETAL_EFAIL, "%s: cannot write the trial record (%s)", path,
                          e ? strerror(e) : "HDF5 error");
    }
    return PETAL_OK;
}

static void get_fixed(char *out, size_t n, hid_t f, const char *name) {
    char *s = h5_get_str(f, name);
    snprintf(out, n, "%s", s ? s : "");
    free(s);
}

int results_record_read(results_record *rec, const char *path, petal_err *err) {
    memset(rec, 0, sizeof *rec);
    h5_quiet q = h5_quiet_begin();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *fmt = f >= 0 ? h5_get_str(f, "format") : NULL;
    int st = PETAL_OK;
    trial_record *r = &rec->r;
    if (f < 0 || !fmt || strcmp(fmt, FORMAT)) {
        st = petal_fail(err, PETAL_EINPUT, "%s: %s", path,
                        f < 0 ? "not an HDF5 file (truncated or damaged)"
                        : fmt ? "a trial record of another petal version" : "not a petal trial record");
        goto out;
    }
    char status[32];
    get_fixed(rec->id, sizeof rec->id, f, "id");
    get_fixed(status, sizeof status, f, "status");
    rec->status = results_status_parse(status);
    rec->config = h5_get_str(f, "config");
    get_fixed(r->label, sizeof r->label, f, "label");
    get_fixed(rec->error, sizeof rec->error, f, "error");
    get_fixed(rec->host, sizeof rec->host, f, "host");
    get_fixed(rec->version, sizeof rec->version, f, "version");
    get_fixed(rec->finished_at, sizeof rec->finished_at, f, "finished_at");
    get_fixed(rec->decision, sizeof rec->decision, f, "decision");
    long long iv[5] = {0};
    const char *in[5] = {"attempts", "epochs_budget", "n_folds", "trainable", "total"};
    int bad = rec->status < 0 || !rec->config;
    for (int i = 0; i < 5; i++) bad |= h5_get_attr(f, in[i], H5T_NATIVE_LLONG, &iv[i]);
    double dv[5] = {0};
    const char *dn[5] = {"test_acc", "test_acc_std", "best_valid_acc", "seconds", "peak_rss_mib"};
    for (int i = 0; i < 5; i++) bad |= h5_get_attr(f, dn[i], H5T_NATIVE_DOUBLE, &dv[i]);
    if (bad || iv[2] < 0 || iv[2] > 1000) {
        st = petal_fail(err, PETAL_EINPUT, "%s: trial record fields missing or out of range", path);
        goto out;
    }
    rec->attempts = (int)iv[0], rec->epochs_budget = (int)iv[1];
    r->trainable = (size_t)iv[3], r->total = (size_t)iv[4];
    r->test_acc_mean = dv[0], r->test_acc_std = dv[1], r->best_valid_acc_mean = dv[2];
    r->seconds = dv[3], r->peak_rss_mib = dv[4];
    int nf = (int)iv[2];
    double *folds = petal_calloc((size_t)(nf ? nf : 1) * 8, sizeof *folds);
    bad = h5_get_data(f, "folds", H5T_NATIVE_DOUBLE, folds, (hsize_t)(nf ? nf * 8 : 0));
    hid_t hs = bad ? -1 : H5Dopen2(f, "history", H5P_DEFAULT);
    hid_t sp = hs >= 0 ? H5Dget_space(hs) : -1;
    hsize_t dims[2] = {0, 0};
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 2 || H5Sget_simple_extent_dims(sp, dims, NULL) != 2 ||
        dims[1] != 8 || dims[0] > 10000000)
        bad = 1;
    if (sp >= 0) H5Sclose(sp);
    if (hs >= 0) H5Dclose(hs);
    double *hist = bad ? NULL : petal_calloc((size_t)(dims[0] ? dims[0] : 1) * 8, sizeof *hist);
    if (!bad) bad = h5_get_data(f, "history", H5T_NATIVE_DOUBLE, hist, dims[0] * 8);
    if (!bad) {
        r->folds = petal_calloc((size_t)(nf ? nf : 1), sizeof *r->folds);
        size_t k = 0;
        for (int i = 0; i < nf && !bad; i++) {
            fold_record *fr = &r->folds[r->n_folds++];
            const double *row = folds + 8 * i;
            fr->fold = (int)row[0], fr->status = (trial_status)row[1], fr->best_epoch = (int)row[2];
            fr->epochs = (int)row[3], fr->best_valid_acc = row[4], fr->test_acc = row[5];
            fr->test_loss = row[6], fr->seconds = row[7];
            if (fr->epochs < 0 || k + (size_t)fr->epochs > dims[0] || fr->status > TRIAL_FAILED) {
                bad = 1;
                fr->epochs = 0;
                break;
            }
            fr->history = petal_calloc((size_t)(fr->epochs ? fr->epochs : 1), sizeof *fr->history);
            for (int e = 0; e < fr->epochs; e++, k++) {
                const double *h = hist + 8 * k;
                fr->history[e] = (epoch_record){h[2], h[3], h[4], h[5], h[6], h[7]};
            }
        }
    }
    free(folds), free(hist);
    if (bad) st = petal_fail(err, PETAL_EINPUT, "%s: trial record tables missing or inconsistent", path);
out:
    free(fmt);
    if (f >= 0) H5Fclose(f);
    h5_quiet_end(q);
    if (st) results_record_free(rec);
    return st;
}
