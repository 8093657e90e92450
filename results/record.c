// ==== Trial records: pack / unpack for messages, the per-trial record file ========
#include "results/record.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

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
    if (!u.bad && u.at != len) u.bad = 1;  // bytes past the record: not one record
    if (u.bad || rec->status < 0 || rec->status >= RS_COUNT) {
        results_record_free(rec);
        return petal_fail(err, PETAL_EFAIL, "a truncated or damaged trial record (%zu bytes)", len);
    }
    return PETAL_OK;
}

// ---- the record file ------------------------------------------------------------
// The packed form followed by the XXH3-64 of it: one write of a few hundred
// bytes, where an HDF5 file of attributes and tables cost about a millisecond
// a trial (the sweep's whole per-trial budget). results.h5 is the HDF5 face of
// the records; this file is the sweep's journal entry. Native byte order is
// little-endian on every machine petal builds on (checked below), so a record
// moves between the nodes of a cluster.
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "record files are little-endian");

int results_record_write(const results_record *rec, const char *path, petal_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    char *buf;
    size_t len;
    results_record_pack(&buf, &len, rec);
    XXH64_hash_t sum = XXH3_64bits(buf, len);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666), bad = fd < 0;
    if (!bad) bad = petal_write_full(fd, buf, len) || petal_write_full(fd, &sum, sizeof sum);
    if (fd >= 0 && close(fd)) bad = 1;
    free(buf);
    // Renamed without file_commit's fsyncs (they cost 0.3-5 ms a trial): the
    // rename alone makes the record survive a kill of any process; the store
    // makes records durable against power loss in groups (results_store_flush:
    // one syncfs before each results.h5 rebuild and at the end).
    if (!bad && rename(tmp, path)) bad = 1;
    if (bad) {
        int e = errno;
        if (fd >= 0) unlink(tmp);
        return petal_fail(err, PETAL_EFAIL, "%s: cannot write the trial record (%s)", path, strerror(e));
    }
    return PETAL_OK;
}

int results_record_read(results_record *rec, const char *path, petal_err *err) {
    memset(rec, 0, sizeof *rec);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        int e = errno;
        if (fd >= 0) close(fd);
        return petal_fail(err, PETAL_EFAIL, "%s: cannot read (%s)", path, strerror(e));
    }
    size_t n = (size_t)sb.st_size;
    if (sb.st_size < (off_t)sizeof(XXH64_hash_t) || sb.st_size > (off_t)1 << 30) {
        close(fd);
        return petal_fail(err, PETAL_EINPUT, "%s: not a petal trial record (%lld bytes)", path,
                          (long long)sb.st_size);
    }
    char *buf = petal_malloc(n);
    int unread = petal_read_full(fd, buf, n);
    close(fd);
    XXH64_hash_t sum;
    size_t body = n - sizeof sum;
    int st = PETAL_OK;
    if (!unread) memcpy(&sum, buf + body, sizeof sum);
    if (unread)
        st = petal_fail(err, PETAL_EINPUT, "%s: cannot read", path);
    else if (sum != XXH3_64bits(buf, body))
        st = petal_fail(err, PETAL_EINPUT, "%s: checksum mismatch (a torn or damaged trial record)", path);
    else if ((st = results_record_unpack(rec, buf, body, err)))
        st = petal_fail(err, PETAL_EINPUT, "%s: %s", path, err->msg);
    free(buf);
    return st;
}
