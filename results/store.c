// ==== The results store: records (the truth), results.h5 rebuilt from them =======
#include "results/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/h5.h"
#include "core/settings.h"
#include "core/trial.h"
#include "core/version.h"

#define FORMAT RESULTS_FORMAT

static int mkdir_p(const char *dir, petal_err *err) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat sb;
        if (!stat(dir, &sb) && S_ISDIR(sb.st_mode)) return PETAL_OK;
    }
    return petal_fail(err, PETAL_EINPUT, "%s: cannot create the folder (%s)", dir, strerror(errno));
}

int results_trial_dir(char *out, size_t n, const char *run, const char *id, petal_err *err) {
    snprintf(out, n, "%s/trials/%s", run, id);
    return mkdir_p(out, err);
}

// Writes text to path atomically (temporary name, fsync, rename).
static int write_atomic(const char *path, const char *text, petal_err *err) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int bad = !f || fputs(text, f) < 0;
    if (f && fclose(f)) bad = 1;
    if (bad) unlink(tmp);
    if (bad || file_commit(tmp, path)) {
        int e = errno;
        return petal_fail(err, PETAL_EFAIL, "%s: cannot write (%s)", path, strerror(e));
    }
    return PETAL_OK;
}

// True when the file at path holds exactly text.
static int same_text(const char *path, const char *text) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = strlen(text), i = 0;
    int c, same = 1;
    while (same && (c = fgetc(f)) != EOF) same = i < n && (char)c == text[i++];
    fclose(f);
    return same && i == n;
}

static void now_iso(char *out, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

// Takes RUN/lock without waiting; the holder's pid is in the file.
static int take_lock(results_store *s, petal_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", s->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return petal_fail(err, PETAL_EINPUT, "%s: cannot create (%s)", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        char pid[32] = "";
        ssize_t got = pread(fd, pid, sizeof pid - 1, 0);
        pid[got > 0 ? got : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        return petal_fail(err, PETAL_EINPUT,
                          "%s is in use by another sweep (pid %s); wait for it or stop it first",
                          s->dir, pid[0] ? pid : "unknown");
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)len, 0) != len) {
        close(fd);
        return petal_fail(err, PETAL_EFAIL, "%s: cannot write (%s)", path, strerror(errno));
    }
    s->lock_fd = fd;
    return PETAL_OK;
}

static int cmp_id(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int results_store_open(results_store *s, const char *dir, const sweep_spec *spec, int shard,
                       const petal_notes *notes, petal_err *err) {
    memset(s, 0, sizeof *s);
    s->lock_fd = -1;
    s->spec = spec;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    char path[4400];
    int st = mkdir_p(dir, err);
    snprintf(path, sizeof path, "%s/trials", dir);
    if (!st) st = mkdir_p(path, err);
    if (!st && access(dir, W_OK))
        st = petal_fail(err, PETAL_EINPUT, "%s: not writable (%s)", dir, strerror(errno));
    if (!st && !shard) st = take_lock(s, err);
    snprintf(path, sizeof path, "%s/created", dir);
    FILE *cf = st ? NULL : fopen(path, "r");
    if (cf) {
        if (!fgets(s->created, sizeof s->created, cf)) s->created[0] = 0;
        s->created[strcspn(s->created, "\n")] = 0;
        fclose(cf);
    }
    if (!st && !s->created[0]) {
        now_iso(s->created, sizeof s->created);
        char line[40];
        snprintf(line, sizeof line, "%s\n", s->created);
        st = write_atomic(path, line, err);
    }
    // array tasks write the spec only when it is missing or another: `petal
    // results check` merges their records with it
    snprintf(path, sizeof path, "%s/spec.yaml", dir);
    if (!st && (!shard || !same_text(path, spec->text))) st = write_atomic(path, spec->text, err);
    if (st) {
        results_store_close(s);
        return st;
    }
    s->rows = petal_calloc((size_t)(spec->n ? spec->n : 1), sizeof *s->rows);
    for (int i = 0; i < spec->n; i++) {
        results_record *r = &s->rows[i];
        snprintf(path, sizeof path, "%s/trials/%s/record.bin", dir, spec->trials[i].id);
        petal_err e;
        char old[4300];
        snprintf(old, sizeof old, "%s/trials/%s/record.h5", dir, spec->trials[i].id);
        if (access(path, F_OK) && !access(old, F_OK)) {  // petal 0.3 wrote HDF5 records
            results_store_close(s);
            return petal_fail(err, PETAL_EINPUT, "%s: a store of petal 0.3 (trial records in HDF5): "
                              "finish it with that version, or start a new RUN", dir);
        }
        if (access(path, F_OK) == 0) {
            if (!results_record_read(r, path, &e)) {
                if (strcmp(r->id, spec->trials[i].id)) {
                    results_record_free(r);
                    snprintf(e.msg, sizeof e.msg, "%.900s: holds trial %s", path, r->id);
                } else {
                    continue;
                }
            }
            char aside[4500];
            snprintf(aside, sizeof aside, "%s.damaged", path);
            rename(path, aside);
            petal_note(notes, "%s; moved aside to %s, the trial runs again", e.msg, aside);
        }
        memset(r, 0, sizeof *r);
        memcpy(r->id, spec->trials[i].id, sizeof r->id);
        r->status = RS_PENDING;
    }
    // records of trials the spec no longer has stay on disk (they come back if it does)
    // (the spec's ids sorted once: a store of 100,000 trials opens in n log n, not n^2)
    const char **ids = petal_malloc(sizeof *ids * (size_t)(spec->n ? spec->n : 1));
    for (int i = 0; i < spec->n; i++) ids[i] = spec->trials[i].id;
    qsort(ids, (size_t)spec->n, sizeof *ids, cmp_id);
    snprintf(path, sizeof path, "%s/trials", dir);
    DIR *d = opendir(path);
    for (struct dirent *de; d && (de = readdir(d));) {
        const char *name = de->d_name;
        if (name[0] == '.') continue;
        s->n_orphans += !bsearch(&name, ids, (size_t)spec->n, sizeof *ids, cmp_id);
    }
    if (d) closedir(d);
    free(ids);
    for (int i = 0; i < spec->n; i++)
        if (!s->rows[i].config) {
            s->rows[i].config = malloc(strlen(spec->trials[i].identity) + 1);
            if (!s->rows[i].config) petal_oom(strlen(spec->trials[i].identity) + 1);
            strcpy(s->rows[i].config, spec->trials[i].identity);
        }
    s->dirty = 1;
    return PETAL_OK;
}

int results_store_put(results_store *s, int i, const results_record *rec, petal_err *err) {
    char dir[4200], path[4300];
    int st = results_trial_dir(dir, sizeof dir, s->dir, rec->id, err);
    snprintf(path, sizeof path, "%s/record.bin", dir);
    if (!st) st = results_record_write(rec, path, err);
    if (st) return st;
    results_record_free(&s->rows[i]);
    // a deep copy through the packed form (one definition of what a record holds)
    char *buf;
    size_t len;
    results_record_pack(&buf, &len, rec);
    st = results_record_unpack(&s->rows[i], buf, len, err);
    free(buf);
    s->dirty = 1;
    return st;
}

void results_store_mark(results_store *s, int i, int status) {
    if (s->rows[i].status != status) s->dirty = 1;
    s->rows[i].status = status;
}

// ---- results.h5 ------------------------------------------------------------------
typedef enum { C_I64, C_F64, C_STR, C_VSTR } col_kind;
typedef struct {
    const char *name;
    col_kind kind;
    size_t size, offset;  // C_STR: fixed length incl. NUL
} column;

static hid_t compound(const column *c, int n, size_t row) {
    hid_t t = H5Tcreate(H5T_COMPOUND, row);
    for (int i = 0; i < n; i++) {
        hid_t ft = c[i].kind == C_I64 ? H5Tcopy(H5T_STD_I64LE) : c[i].kind == C_F64 ? H5Tcopy(H5T_IEEE_F64LE)
                                                                                   : H5Tcopy(H5T_C_S1);
        if (c[i].kind == C_STR) H5Tset_size(ft, c[i].size);
        if (c[i].kind == C_VSTR) H5Tset_size(ft, H5T_VARIABLE);
        if (c[i].kind >= C_STR) H5Tset_cset(ft, H5T_CSET_UTF8);
        H5Tinsert(t, c[i].name, c[i].offset, ft);
        H5Tclose(ft);
    }
    return t;
}

static size_t layout(column *c, int n) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t sz = c[i].kind == C_I64 || c[i].kind == C_F64 ? 8 : c[i].kind == C_VSTR ? sizeof(char *) : c[i].size;
        size_t al = c[i].kind == C_STR ? 1 : 8;
        off = (off + al - 1) / al * al;
        c[i].offset = off;
        off += sz;
    }
    return (off + 7) / 8 * 8;
}

static int put_table(hid_t f, const char *name, const column *c, int nc, size_t row, const void *rows,
                     hsize_t n) {
    hid_t t = compound(c, nc, row), sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = ds < 0 || (n && H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp), H5Tclose(t);
    return bad ? -1 : 0;
}

static void put_text(char *row, const column *c, const char *v) {
    snprintf(row + c->offset, c->size, "%s", v ? v : "");
}

// The fixed columns of /trials, in order (results_row mirrors them).
static const column fixed_cols[] = {
    {"id", C_STR, SWEEP_ID_LEN + 1, 0},  {"status", C_STR, 12, 0},   {"method", C_STR, 32, 0},
    {"label", C_STR, 128, 0},            {"test_acc", C_F64, 0, 0},  {"test_acc_std", C_F64, 0, 0},
    {"best_valid_acc", C_F64, 0, 0},     {"best_epoch", C_I64, 0, 0}, {"epochs", C_I64, 0, 0},
    {"folds", C_I64, 0, 0},              {"seconds", C_F64, 0, 0},   {"trainable", C_I64, 0, 0},
    {"total", C_I64, 0, 0},              {"peak_rss_mib", C_F64, 0, 0}, {"attempts", C_I64, 0, 0},
    {"epochs_budget", C_I64, 0, 0},      {"decision", C_STR, 16, 0}, {"error", C_VSTR, 0, 0},
    {"config", C_VSTR, 0, 0},            {"host", C_STR, 64, 0},     {"petal_version", C_STR, 64, 0},
    {"finished_at", C_STR, 32, 0},      {"rung", C_I64, 0, 0},      {"max_epochs", C_I64, 0, 0},
};
enum { NFIXED = sizeof fixed_cols / sizeof fixed_cols[0] };

// Epochs a trial has trained (every fold's, resumed ones counted once).
static long long epochs_of(const trial_record *tr) {
    long long e = 0;
    for (int f = 0; f < tr->n_folds; f++) e += tr->folds[f].epochs;
    return e;
}

static int write_results(const results_store *s, const char *path, petal_err *err) {
    const sweep_spec *sp = s->spec;
    int nc = NFIXED + sp->nvarying;
    column *c = petal_calloc((size_t)nc, sizeof *c);
    memcpy(c, fixed_cols, sizeof fixed_cols);
    for (int k = 0; k < sp->nvarying; k++) {
        const setting_def *d = setting_find(sp->varying[k]);
        column *col = &c[NFIXED + k];
        col->name = d->key;
        col->kind = d->type == SET_INT || d->type == SET_BOOL ? C_I64 : d->type == SET_NUM ? C_F64 : C_STR;
        if (col->kind == C_STR) {  // as wide as the longest value
            col->size = 2;
            for (int i = 0; i < sp->n; i++) {
                const char *v = config_get(&sp->trials[i].kv, d->key);
                if (v && strlen(v) + 1 > col->size) col->size = strlen(v) + 1;
            }
        }
    }
    size_t row = layout(c, nc);
    char *rows = petal_calloc((size_t)(sp->n ? sp->n : 1), row);
    long counts[RS_COUNT] = {0};
    long long epochs_spent = 0;
    size_t nhist = 0;
    for (int i = 0; i < sp->n; i++) {
        const results_record *r = &s->rows[i];
        const trial_record *tr = &r->r;
        char *p = rows + (size_t)i * row;
        counts[r->status]++;
        const char *method = config_get(&sp->trials[i].kv, "method");
        int best_epoch = tr->n_folds ? tr->folds[0].best_epoch : 0, epochs = 0;
        for (int f = 0; f < tr->n_folds; f++) {
            if (tr->folds[f].epochs > epochs) epochs = tr->folds[f].epochs;
            nhist += (size_t)tr->folds[f].epochs;
        }
        epochs_spent += epochs_of(tr);
        // early stopping: the rung of the trial's last decision (its first
        // fold's epochs, when a rung), and its full budget train.epochs
        trial_settings ts;
        long long max_epochs = trial_settings_resolve(&ts, &sp->trials[i].kv, NULL) ? -1 : ts.epochs;
        long long rung = -1;
        int e1 = tr->n_folds ? tr->folds[0].epochs : 0;
        if (sp->early.kind != EARLY_NONE && e1 > 0) {
            long rk = sp->early.min_epochs;
            for (int k = 0; rung < 0 && rk < max_epochs; k++, rk *= sp->early.eta)
                if (rk == e1) rung = k;
            if (rung < 0 && e1 == max_epochs)  // the top: one past the last pause rung
                for (rung = 0, rk = sp->early.min_epochs; rk < max_epochs; rk *= sp->early.eta) rung++;
        }
        memcpy(p + c[22].offset, &rung, 8), memcpy(p + c[23].offset, &max_epochs, 8);
        double nan = NAN, done = r->status == RS_DONE;
        double f64[5] = {done ? tr->test_acc_mean : nan, done ? tr->test_acc_std : nan,
                         done ? tr->best_valid_acc_mean : nan, tr->seconds, tr->peak_rss_mib};
        long long i64[7] = {best_epoch, epochs, tr->n_folds, (long long)tr->trainable, (long long)tr->total,
                            r->attempts, r->epochs_budget};
        put_text(p, &c[0], r->id), put_text(p, &c[1], results_status_name(r->status));
        put_text(p, &c[2], method ? method : "linear"), put_text(p, &c[3], tr->label);
        memcpy(p + c[4].offset, &f64[0], 8), memcpy(p + c[5].offset, &f64[1], 8);
        memcpy(p + c[6].offset, &f64[2], 8);
        for (int k = 0; k < 3; k++) memcpy(p + c[7 + k].offset, &i64[k], 8);
        memcpy(p + c[10].offset, &f64[3], 8);
        memcpy(p + c[11].offset, &i64[3], 8), memcpy(p + c[12].offset, &i64[4], 8);
        memcpy(p + c[13].offset, &f64[4], 8);
        memcpy(p + c[14].offset, &i64[5], 8), memcpy(p + c[15].offset, &i64[6], 8);
        put_text(p, &c[16], r->decision);
        const char *error = r->error, *config = r->config ? r->config : "";
        memcpy(p + c[17].offset, &error, sizeof error), memcpy(p + c[18].offset, &config, sizeof config);
        put_text(p, &c[19], r->host), put_text(p, &c[20], r->version), put_text(p, &c[21], r->finished_at);
        for (int k = 0; k < sp->nvarying; k++) {
            const column *col = &c[NFIXED + k];
            const char *v = config_get(&sp->trials[i].kv, col->name);
            setting_value sv;
            const setting_def *d;
            int ok = v && !setting_parse_text(&sv, &d, col->name, v, NULL);
            if (col->kind == C_STR) {
                put_text(p, col, v);
            } else if (col->kind == C_F64) {
                double x = ok ? sv.x : NAN;
                memcpy(p + col->offset, &x, 8);
            } else {
                long long x = ok ? sv.i : -1;
                memcpy(p + col->offset, &x, 8);
            }
        }
    }
    // /history of the finished trials
    column hc[] = {{"id", C_STR, SWEEP_ID_LEN + 1, 0}, {"fold", C_I64, 0, 0},       {"epoch", C_I64, 0, 0},
                   {"train_loss", C_F64, 0, 0},        {"train_acc", C_F64, 0, 0},  {"valid_loss", C_F64, 0, 0},
                   {"valid_acc", C_F64, 0, 0},         {"lr", C_F64, 0, 0},         {"seconds", C_F64, 0, 0}};
    size_t hrow = layout(hc, 9);
    char *hist = petal_calloc(nhist ? nhist : 1, hrow);
    size_t k = 0;
    for (int i = 0; i < sp->n; i++) {
        const results_record *r = &s->rows[i];
        for (int f = 0; f < r->r.n_folds; f++)
            for (int e = 0; e < r->r.folds[f].epochs; e++, k++) {
                char *p = hist + k * hrow;
                const epoch_record *h = &r->r.folds[f].history[e];
                long long fe[2] = {r->r.folds[f].fold, e + 1};
                double v[6] = {h->train_loss, h->train_acc, h->valid_loss, h->valid_acc, h->lr, h->seconds};
                put_text(p, &hc[0], r->id);
                memcpy(p + hc[1].offset, &fe[0], 8), memcpy(p + hc[2].offset, &fe[1], 8);
                for (int j = 0; j < 6; j++) memcpy(p + hc[3 + j].offset, &v[j], 8);
            }
    }
    char tmp[4300], libs[2048], host[64] = "", updated[32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    petal_library_versions(libs, sizeof libs);
    gethostname(host, sizeof host - 1);
    now_iso(updated, sizeof updated);
    h5_quiet q = h5_quiet_begin();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int bad = f < 0;
    if (!bad) {
        bad |= h5_put_str(f, "format", FORMAT) | h5_put_str(f, "study", sp->study);
        bad |= h5_put_str(f, "spec", sp->text) | h5_put_str(f, "spec_hash", sp->hash);
        bad |= h5_put_str(f, "petal_version", petal_version()) | h5_put_str(f, "libraries", libs);
        bad |= h5_put_str(f, "host", host) | h5_put_str(f, "created", s->created);
        bad |= h5_put_str(f, "updated", updated);
        char early[96] = "none";
        if (sp->early.kind != EARLY_NONE)
            snprintf(early, sizeof early, "%s min_epochs=%d eta=%d", sp->early.kind == EARLY_ASHA ? "asha" : "median",
                     sp->early.min_epochs, sp->early.eta);
        bad |= h5_put_str(f, "early_stop", early) | h5_put_i64(f, "epochs_spent", epochs_spent);
        for (int st = 0; st < RS_COUNT; st++) {
            char name[32];
            snprintf(name, sizeof name, "n_%s", results_status_name(st));
            bad |= h5_put_i64(f, name, counts[st]);
        }
        bad |= put_table(f, "trials", c, nc, row, rows, (hsize_t)sp->n);
        bad |= put_table(f, "history", hc, 9, hrow, hist, (hsize_t)nhist);
        hid_t g = H5Gcreate2(f, "checkpoints", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        bad |= g < 0;
        for (int i = 0; g >= 0 && i < sp->n; i++) {
            const results_record *r = &s->rows[i];
            if (r->status == RS_PENDING) continue;
            hid_t tg = H5Gcreate2(g, r->id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            for (int fo = 0; tg >= 0 && fo < r->r.n_folds; fo++) {
                char target[128], lname[32];
                snprintf(target, sizeof target, "trials/%s/fold%d.h5", r->id, r->r.folds[fo].fold);
                snprintf(lname, sizeof lname, "fold%d", r->r.folds[fo].fold);
                bad |= H5Lcreate_external(target, "/", tg, lname, H5P_DEFAULT, H5P_DEFAULT) < 0;
            }
            if (tg >= 0) H5Gclose(tg);
            else bad = 1;
        }
        if (g >= 0) H5Gclose(g);
        bad |= H5Fclose(f) < 0;
    }
    h5_quiet_end(q);
    free(c), free(rows), free(hist);
    if (bad) unlink(tmp);
    if (bad || file_commit(tmp, path)) {
        int e = errno;
        return petal_fail(err, PETAL_EFAIL, "%s: cannot write the results store (%s)", path,
                          e ? strerror(e) : "HDF5 error");
    }
    return PETAL_OK;
}

// The group commit: every record renamed into RUN/trials so far reaches the disk.
static int sync_records(const results_store *s, petal_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/trials", s->dir);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int bad = fd < 0 || syncfs(fd);
    int e = errno;
    if (fd >= 0) close(fd);
    if (bad) return petal_fail(err, PETAL_EFAIL, "%s: cannot sync the trial records (%s)", path, strerror(e));
    return PETAL_OK;
}

int results_store_flush(results_store *s, int force, petal_err *err) {
    if (!s->dirty) return PETAL_OK;
    if (s->lock_fd < 0) {  // a shard: no results.h5, its records durable at the end
        if (!force) return PETAL_OK;
        int st = sync_records(s, err);
        if (!st) s->dirty = 0;
        return st;
    }
    double now = petal_now();
    // Due when the last rewrite's cost is at most ~5% of the time since: the
    // store's cost stays linear in the trials however many there are.
    double gap = 20.0 * s->rebuild_seconds;
    if (!force && s->last_rebuild > 0 && now - s->last_rebuild < (gap > 2.0 ? gap : 2.0)) return PETAL_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/results.h5", s->dir);
    int st = sync_records(s, err);
    if (!st) st = write_results(s, path, err);
    s->rebuild_seconds = petal_now() - now;
    s->last_rebuild = petal_now();
    if (!st) s->dirty = 0;
    return st;
}

void results_store_close(results_store *s) {
    for (int i = 0; s->rows && s->spec && i < s->spec->n; i++) results_record_free(&s->rows[i]);
    free(s->rows);
    s->rows = NULL;
    if (s->lock_fd >= 0) close(s->lock_fd);
    s->lock_fd = -1;
}

// ---- reading ----------------------------------------------------------------------
int results_table_read(results_table *t, const char *run, petal_err *err) {
    memset(t, 0, sizeof *t);
    char path[4200];
    snprintf(path, sizeof path, "%s/results.h5", run);
    if (access(path, F_OK))
        return petal_fail(err, PETAL_EINPUT, "%s: no results store here (run petal sweep SPEC --out %s)",
                          path, run);
    h5_quiet q = h5_quiet_begin();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *fmt = f >= 0 ? h5_get_str(f, "format") : NULL;
    int st = PETAL_OK;
    if (f < 0 || !fmt || strcmp(fmt, FORMAT)) {
        if (fmt && f >= 0)
            st = petal_fail(err, PETAL_EINPUT, "%s: a results store of format '%.100s' (this petal reads '%s')",
                            path, fmt, FORMAT);
        else
            st = petal_fail(err, PETAL_EINPUT, "%s: %s", path,
                            f < 0 ? "not an HDF5 file (truncated or damaged; petal results check rebuilds it)"
                                  : "not a petal results store");
        goto out;
    }
    t->study = h5_get_str(f, "study"), t->spec = h5_get_str(f, "spec");
    t->spec_hash = h5_get_str(f, "spec_hash"), t->version = h5_get_str(f, "petal_version");
    t->libraries = h5_get_str(f, "libraries"), t->host = h5_get_str(f, "host");
    t->created = h5_get_str(f, "created"), t->updated = h5_get_str(f, "updated");
    t->early_stop = h5_get_str(f, "early_stop");
    if (h5_get_attr(f, "epochs_spent", H5T_NATIVE_LLONG, &t->epochs_spent)) t->epochs_spent = -1;
    // the memory type: results_row's fields, matched by name
    hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(results_row));
    hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    H5Tset_cset(vs, H5T_CSET_UTF8);
#define STR(field)                                                              \
    do {                                                                        \
        hid_t ft = H5Tcopy(H5T_C_S1);                                           \
        H5Tset_size(ft, sizeof(((results_row *)0)->field));                     \
        H5Tset_cset(ft, H5T_CSET_UTF8);                                         \
        H5Tinsert(mt, #field, HOFFSET(results_row, field), ft);                 \
        H5Tclose(ft);                                                           \
    } while (0)
#define NUM(field, type) H5Tinsert(mt, #field, HOFFSET(results_row, field), type)
    STR(id);
    STR(status);
    STR(method);
    STR(label);
    STR(decision);
    STR(host);
    STR(finished_at);
    {
        hid_t ft = H5Tcopy(H5T_C_S1);
        H5Tset_size(ft, sizeof(((results_row *)0)->version));
        H5Tset_cset(ft, H5T_CSET_UTF8);
        H5Tinsert(mt, "petal_version", HOFFSET(results_row, version), ft);
        H5Tclose(ft);
    }
    NUM(test_acc, H5T_NATIVE_DOUBLE), NUM(test_acc_std, H5T_NATIVE_DOUBLE);
    NUM(best_valid_acc, H5T_NATIVE_DOUBLE), NUM(seconds, H5T_NATIVE_DOUBLE);
    NUM(peak_rss_mib, H5T_NATIVE_DOUBLE), NUM(best_epoch, H5T_NATIVE_LLONG);
    NUM(epochs, H5T_NATIVE_LLONG), NUM(folds, H5T_NATIVE_LLONG), NUM(trainable, H5T_NATIVE_LLONG);
    NUM(total, H5T_NATIVE_LLONG), NUM(attempts, H5T_NATIVE_LLONG), NUM(epochs_budget, H5T_NATIVE_LLONG);
    NUM(rung, H5T_NATIVE_LLONG), NUM(max_epochs, H5T_NATIVE_LLONG);
    H5Tinsert(mt, "error", HOFFSET(results_row, error), vs);
    H5Tinsert(mt, "config", HOFFSET(results_row, config), vs);
#undef STR
#undef NUM
    hid_t ds = H5Dopen2(f, "trials", H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (n >= 0) {
        t->rows = petal_calloc((size_t)(n ? n : 1), sizeof *t->rows);
        t->n = (int)n;
        // members the file lacks (a store from before early stopping) keep these
        for (hssize_t i = 0; i < n; i++) t->rows[i].rung = -1;
    }
    if (n < 0 || (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->rows) < 0))
        st = petal_fail(err, PETAL_EINPUT, "%s: the /trials table is missing or unreadable", path);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    H5Tclose(mt), H5Tclose(vs);
out:
    free(fmt);
    if (f >= 0) H5Fclose(f);
    h5_quiet_end(q);
    if (st) results_table_free(t);
    return st;
}

void results_table_free(results_table *t) {
    for (int i = 0; i < t->n; i++) free(t->rows[i].error), free(t->rows[i].config);
    free(t->rows);
    free(t->study), free(t->spec), free(t->spec_hash), free(t->version), free(t->libraries);
    free(t->host), free(t->created), free(t->updated), free(t->early_stop);
    memset(t, 0, sizeof *t);
}
