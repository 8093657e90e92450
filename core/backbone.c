// ==== Backbone files (HDF5) and the HuggingFace AST checkpoint import ==========
#include "core/backbone.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/h5.h"
#include "core/json.h"
#include "core/safetensors.h"

static int is_head_row(const param_row *r) { return !strncmp(r->name, "classifier.", 11); }

static const char *const pos_name = "embeddings.position_embeddings";

// A table over some of t's rows (copied row records marked backbone, sharing
// t's data buffer), so that param_load_h5 / param_save_h5 act on exactly those
// rows. Free with free(view.rows) only.
static param_table view_rows(const param_table *t, int with_backbone, int with_head,
                             int skip_pos) {
    param_table v = {0};
    v.rows = petal_calloc((size_t)(t->nrows ? t->nrows : 1), sizeof *v.rows);
    for (int i = 0; i < t->nrows; i++) {
        const param_row *r = &t->rows[i];
        if (!((with_backbone && r->backbone) || (with_head && is_head_row(r)))) continue;
        if (skip_pos && !strcmp(r->name, pos_name)) continue;
        v.rows[v.nrows] = *r;
        v.rows[v.nrows].backbone = 1;
        v.nrows++;
    }
    v.cap = v.nrows;
    v.data = t->data;
    v.ndata = t->ndata;
    return v;
}

// ---- HDF5 attributes ---------------------------------------------------------------

// A string attribute into out (n bytes); -1 if absent or unreadable.
static int get_str_attr(hid_t obj, const char *name, char *out, size_t n) {
    char *s = h5_get_str(obj, name);
    if (!s) return -1;
    snprintf(out, n, "%s", s);
    free(s);
    return 0;
}

// ---- save --------------------------------------------------------------------------

// K strings as a variable-length UTF-8 dataset.
static int put_labels(hid_t f, char *const *labels, int K) {
    hsize_t dims[1] = {(hsize_t)K};
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = s < 0 ? -1 : H5Dcreate2(f, "labels", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) >= 0;
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Sclose(s);
    H5Tclose(t);
    return ok ? 0 : -1;
}

int backbone_save(const char *path, const ast_model *m, int with_head, char *const *labels,
                  petal_err *err) {
    const ast_config *c = &m->cfg;
    size_t plen = strlen(path);
    char *tmp = petal_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    h5_quiet quiet = h5_quiet_begin();  // petal reports HDF5 errors itself
    int st = PETAL_OK;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        st = petal_fail(err, PETAL_EFAIL, "%s: cannot create HDF5 file", tmp);
        goto out;
    }
    const struct {
        const char *name;
        int v;
    } ints[] = {{"C", c->C},       {"L", c->L},         {"NH", c->NH},
                {"MLP", c->MLP},   {"F", c->F},         {"frames", c->frames},
                {"patch", c->patch}, {"fstride", c->fstride}, {"tstride", c->tstride}};
    int bad = 0;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) bad |= h5_put_int(f, ints[i].name, ints[i].v);
    double eps = c->ln_eps;
    bad |= h5_put_attr(f, "ln_eps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &eps);
    if (with_head) {
        bad |= h5_put_int(f, "K", c->K);
        bad |= h5_put_int(f, "head_ln", c->head_ln);
        bad |= h5_put_str(f, "pool", ast_pool_name(c->pool));
        if (labels) bad |= put_labels(f, labels, c->K);
    }
    if (bad) st = petal_fail(err, PETAL_EFAIL, "%s: cannot write the configuration", tmp);
    if (!st) {
        param_table v = view_rows(&m->params, 1, with_head, 0);
        st = param_save_h5(&v, (long long)f, "params", 0, err);
        free(v.rows);
    }
    if (H5Fclose(f) < 0 && !st)
        st = petal_fail(err, PETAL_EFAIL, "%s: cannot write (disk full or I/O error)", tmp);
    if (!st && rename(tmp, path) != 0)
        st = petal_fail(err, PETAL_EFAIL, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st) unlink(tmp);
out:
    h5_quiet_end(quiet);
    free(tmp);
    return st;
}

// ---- read --------------------------------------------------------------------------

void backbone_labels_free(char **labels, int K) {
    if (!labels) return;
    for (int i = 0; i < K; i++) free(labels[i]);
    free(labels);
}

// /labels (K strings, fixed or variable length) into *out; NULL if absent.
static int read_labels(char ***out, hid_t f, int K, const char *path, petal_err *err) {
    *out = NULL;
    if (H5Lexists(f, "labels", H5P_DEFAULT) <= 0) return PETAL_OK;
    hid_t d = H5Dopen2(f, "labels", H5P_DEFAULT);
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    int st = PETAL_OK;
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    if (t < 0 || H5Tget_class(t) != H5T_STRING || n != K) {
        st = petal_fail(err, PETAL_EINPUT, "%s: /labels must hold %d strings", path, K);
    } else if (H5Tis_variable_str(t) > 0) {
        char **v = petal_calloc((size_t)K, sizeof *v);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));  // HDF5 does not convert ASCII <-> UTF-8
        if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
            st = petal_fail(err, PETAL_EINPUT, "%s: cannot read /labels", path);
        } else {
            *out = petal_calloc((size_t)K, sizeof **out);
            for (int i = 0; i < K; i++) {
                const char *x = v[i] ? v[i] : "";
                (*out)[i] = petal_malloc(strlen(x) + 1);
                strcpy((*out)[i], x);
            }
            H5Dvlen_reclaim(mt, s, H5P_DEFAULT, v);
        }
        H5Tclose(mt);
        free(v);
    } else {
        size_t len = H5Tget_size(t);
        char *buf = petal_calloc((size_t)K * len + 1, 1);
        if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            st = petal_fail(err, PETAL_EINPUT, "%s: cannot read /labels", path);
        } else {
            *out = petal_calloc((size_t)K, sizeof **out);
            for (int i = 0; i < K; i++) {
                (*out)[i] = petal_calloc(len + 1, 1);
                memcpy((*out)[i], buf + (size_t)i * len, len);  // NUL-padded or terminated
            }
        }
        free(buf);
    }
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return st;
}

// The file must be able to hold the tensors its attributes describe (petal
// writes them uncompressed): sizes within range can still multiply into
// terabytes, which would otherwise be allocated before any tensor is read.
static int check_file_size(const ast_config *c, const char *path, petal_err *err) {
    struct stat sb;
    if (stat(path, &sb)) return petal_fail(err, PETAL_EINPUT, "%s: %s", path, strerror(errno));
    double C = c->C, tokens = 2.0 + (double)ast_fdim(c) * ast_tdim(c);
    double per_layer = 4 * C * C + 2 * C * c->MLP + 9 * C + c->MLP;
    double n = c->L * per_layer + tokens * C + (double)c->patch * c->patch * C + 5 * C;
    if (n * sizeof(float) <= (double)sb.st_size) return PETAL_OK;
    return petal_fail(err, PETAL_EINPUT,
                      "%s: attributes describe %.0f parameters (%.1f MiB) but the file has %lld "
                      "bytes (damaged attributes or truncated file)",
                      path, n, n * sizeof(float) / 1048576.0, (long long)sb.st_size);
}

int backbone_read_config(ast_config *cfg, char ***labels, const char *path, petal_err *err) {
    if (labels) *labels = NULL;
    memset(cfg, 0, sizeof *cfg);
    h5_quiet quiet = h5_quiet_begin();  // petal reports HDF5 errors itself
    int st = PETAL_OK;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        st = petal_fail(err, PETAL_EINPUT, "%s: cannot open as HDF5", path);
        goto out;
    }
    struct {
        const char *name;
        int *v;
    } ints[] = {{"C", &cfg->C},       {"L", &cfg->L},           {"NH", &cfg->NH},
                {"MLP", &cfg->MLP},   {"F", &cfg->F},           {"frames", &cfg->frames},
                {"patch", &cfg->patch}, {"fstride", &cfg->fstride}, {"tstride", &cfg->tstride}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !st; i++)
        if (h5_get_attr(f, ints[i].name, H5T_NATIVE_INT, ints[i].v) < 0)
            st = petal_fail(err, PETAL_EINPUT,
                            "%s: not a petal backbone file (integer attribute %s missing)", path,
                            ints[i].name);
    // Ranges before anything is sized from them: absurd sizes are a damaged
    // or hostile file, not an allocation to attempt. L = 0 is no backbone.
    const int hi[] = {16384, 1024, 1024, 262144, 1024, 100000, 128, 128, 128};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !st; i++)
        if (*ints[i].v < 1 || *ints[i].v > hi[i])
            st = petal_fail(err, PETAL_EINPUT, "%s: attribute %s is %d, expected 1..%d", path,
                            ints[i].name, *ints[i].v, hi[i]);
    double eps = 0;
    if (!st && h5_get_attr(f, "ln_eps", H5T_NATIVE_DOUBLE, &eps) < 0)
        st = petal_fail(err, PETAL_EINPUT, "%s: not a petal backbone file (attribute ln_eps missing)",
                        path);
    if (!st && !(eps > 0 && eps < 1))
        st = petal_fail(err, PETAL_EINPUT, "%s: attribute ln_eps is %g, expected in (0, 1)", path, eps);
    cfg->ln_eps = (float)eps;
    cfg->pool = POOL_ALL;
    int has_k = !st && H5Aexists(f, "K") > 0;
    if (has_k) {
        char pool[32] = "cls_dist";
        if (h5_get_attr(f, "K", H5T_NATIVE_INT, &cfg->K) < 0 || cfg->K < 2 || cfg->K > 100000)
            st = petal_fail(err, PETAL_EINPUT, "%s: attribute K must be an integer in 2..100000",
                            path);
        else if (H5Aexists(f, "head_ln") > 0 && h5_get_attr(f, "head_ln", H5T_NATIVE_INT, &cfg->head_ln) < 0)
            st = petal_fail(err, PETAL_EINPUT, "%s: cannot read attribute head_ln", path);
        else if (H5Aexists(f, "pool") > 0 && get_str_attr(f, "pool", pool, sizeof pool) < 0)
            st = petal_fail(err, PETAL_EINPUT, "%s: cannot read attribute pool", path);
        if (!st) {
            cfg->head_ln = cfg->head_ln != 0;
            st = ast_pool_parse(&cfg->pool, pool, err);
            if (st) {
                char m[sizeof err->msg];
                snprintf(m, sizeof m, "%s", err->msg);
                st = petal_fail(err, PETAL_EINPUT, "%s: attribute pool: %s", path, m);
            }
        }
    }
    if (!st) {  // sizes must make a model (K only matters with a classifier)
        ast_config c = *cfg;
        if (!has_k) c.K = 2;
        if (ast_config_check(&c, err)) {
            char m[sizeof err->msg];
            snprintf(m, sizeof m, "%s", err->msg);
            st = petal_fail(err, PETAL_EINPUT, "%s: %s", path, m);
        }
    }
    if (!st) st = check_file_size(cfg, path, err);
    if (!st && has_k && labels) st = read_labels(labels, f, cfg->K, path, err);
    H5Fclose(f);
out:
    h5_quiet_end(quiet);
    return st;
}

// ---- load --------------------------------------------------------------------------

// The file's sizes must be the model's (frames may differ: re-gridded).
static int check_sizes(const ast_model *m, const char *path, int with_head, int *file_frames,
                       petal_err *err) {
    ast_config fc;
    int st = backbone_read_config(&fc, NULL, path, err);
    if (st) return st;
    const ast_config *c = &m->cfg;
    const struct {
        const char *name;
        int file, model;
    } sizes[] = {{"C", fc.C, c->C},          {"L", fc.L, c->L},
                 {"NH", fc.NH, c->NH},       {"MLP", fc.MLP, c->MLP},
                 {"F", fc.F, c->F},          {"patch", fc.patch, c->patch},
                 {"fstride", fc.fstride, c->fstride}, {"tstride", fc.tstride, c->tstride},
                 {"K", fc.K, with_head ? c->K : fc.K},
                 {"head_ln", fc.head_ln, with_head ? c->head_ln : fc.head_ln}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].file != sizes[i].model)
            return petal_fail(err, PETAL_EINPUT, "%s: backbone has %s=%d, the model %s=%d", path,
                              sizes[i].name, sizes[i].file, sizes[i].name, sizes[i].model);
    if (fc.ln_eps != c->ln_eps)
        return petal_fail(err, PETAL_EINPUT, "%s: backbone has ln_eps=%g, the model %g", path,
                          (double)fc.ln_eps, (double)c->ln_eps);
    if (with_head && !fc.K)
        return petal_fail(err, PETAL_EINPUT, "%s: the backbone has no classifier", path);
    *file_frames = fc.frames;
    return PETAL_OK;
}

// Reads the backbone rows (with_backbone) and the classifier rows (with_head)
// from the file into m's own memory.
static int load_rows(ast_model *m, const char *path, int with_backbone, int with_head,
                     int file_frames, petal_err *err) {
    const ast_config *c = &m->cfg;
    int regrid = with_backbone && file_frames != c->frames;
    param_table v = view_rows(&m->params, with_backbone, with_head, regrid);
    int st = param_load_h5(&v, path, "params", 1, err);
    free(v.rows);
    if (st || !regrid) return st;
    // The file's position embeddings, in their own shape, then re-gridded.
    int f_dim = ast_fdim(c), t_new = ast_tdim(c), C = c->C;
    ast_config fc = *c;
    fc.frames = file_frames;
    int t_old = ast_tdim(&fc);
    size_t n_old = (size_t)(2 + f_dim * t_old) * (size_t)C;
    param_table pv = {0};
    int shape[3] = {1, 2 + f_dim * t_old, C};
    param_row row = {.ndim = 3, .shape = {shape[0], shape[1], shape[2]}, .n = n_old, .goff = -1,
                     .backbone = 1};
    snprintf(row.name, sizeof row.name, "%s", pos_name);
    pv.rows = &row;
    pv.nrows = pv.cap = 1;
    pv.data = petal_falloc(n_old);
    pv.ndata = n_old;
    st = param_load_h5(&pv, path, "params", 1, err);
    if (!st) backbone_regrid_pos(m->w.pos, t_new, pv.data, t_old, f_dim, C);
    free(pv.data);
    return st;
}

// ---- one backbone per node -------------------------------------------------------
//
// The backbone region of the parameter buffer (param_table.data[0, nbackbone):
// backbone rows only, laid out by the architecture alone) is written once per
// node to an image file, <share_dir>/<hash>.img: one page of text naming the
// source file (path, device, inode, size, mtime) and the layout, then the
// region's bytes exactly as a private load leaves them (position embeddings
// already re-gridded to the model's frames). Every process then maps the
// image over the pages of its buffer that hold only frozen backbone rows:
// MAP_PRIVATE, so they are the page cache's pages, one copy on the node
// however many processes read them, and a write (LoRA merged for export)
// copies just the page it touches. Rows that train, and the partial pages at
// the ends of each frozen run, are read into private memory. The first
// process builds the image under an flock while the others wait for it.

static size_t page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

// Hash of the backbone region's layout: every backbone row's name, shape and offset.
static uint64_t layout_hash(const param_table *t) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < t->nrows; i++) {
        const param_row *r = &t->rows[i];
        if (!r->backbone) continue;
        h = fnv1a(h, r->name, strlen(r->name));
        h = fnv1a(h, r->shape, sizeof r->shape);
        h = fnv1a(h, &r->offset, sizeof r->offset);
    }
    return fnv1a(h, &t->nbackbone, sizeof t->nbackbone);
}

static void image_header(char *h, size_t n, const char *real, const struct stat *sb,
                         const ast_model *m, uint64_t layout) {
    const ast_config *c = &m->cfg;
    memset(h, 0, n);
    snprintf(h, n,
             "petal backbone image 1\nsource %s\ndev %llu ino %llu size %lld mtime %lld.%09ld\n"
             "C %d L %d NH %d MLP %d F %d frames %d patch %d fstride %d tstride %d\n"
             "layout %016llx floats %zu page %zu\n",
             real, (unsigned long long)sb->st_dev, (unsigned long long)sb->st_ino,
             (long long)sb->st_size, (long long)sb->st_mtim.tv_sec, (long)sb->st_mtim.tv_nsec,
             c->C, c->L, c->NH, c->MLP, c->F, c->frames, c->patch, c->fstride, c->tstride,
             (unsigned long long)layout, m->params.nbackbone, n);
}

// 0 when fd holds an image with exactly this header and size, written by
// this user (an image is trusted as weights: nobody else's counts).
static int image_check(int fd, const char *want, size_t hdr, size_t bytes) {
    struct stat sb;
    if (fstat(fd, &sb) || (size_t)sb.st_size != hdr + bytes || sb.st_uid != geteuid()) return -1;
    char *got = petal_malloc(hdr);
    int ok = pread(fd, got, hdr, 0) == (ssize_t)hdr && !memcmp(got, want, hdr);
    free(got);
    return ok ? 0 : -1;
}

// Writes header + region to path.tmp.<pid>, syncs it and renames it to path.
static int image_write(const char *path, const char *hdr, size_t nhdr, const float *region,
                       size_t bytes, petal_err *err) {
    char tmp[PATH_MAX + 128];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return petal_fail(err, PETAL_EFAIL, "%s: cannot create (%s)", tmp, strerror(errno));
    const char *parts[2] = {hdr, (const char *)region};
    size_t lens[2] = {nhdr, bytes};
    int ok = 1;
    for (int k = 0; k < 2 && ok; k++)
        for (size_t done = 0; done < lens[k] && ok;) {
            ssize_t w = write(fd, parts[k] + done, lens[k] - done);
            if (w < 0 && errno == EINTR) continue;
            ok = w > 0;
            done += w > 0 ? (size_t)w : 0;
        }
    // Durable before it is published: a torn image would be silently wrong weights.
    ok = ok && fsync(fd) == 0;
    int e = errno;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0) return PETAL_OK;
    e = errno ? errno : e;
    unlink(tmp);
    return petal_fail(err, PETAL_EFAIL, "%s: cannot write (%s)", tmp, strerror(e));
}

// Reads bytes [a, b) of the region from the image into the buffer.
static int image_read(float *data, int fd, size_t hdr, size_t a, size_t b) {
    char *dst = (char *)data;
    while (a < b) {
        ssize_t r = pread(fd, dst + a, b - a, (off_t)(hdr + a));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        a += (size_t)r;
    }
    return 0;
}

// Maps the image over every whole page of m's buffer that holds only frozen
// backbone rows; reads the rest of the backbone rows unless `loaded` (they
// are already in memory). Returns bytes mapped, or -1 if a mapping failed
// (the buffer is anonymous memory again and must be loaded privately).
static long long image_map(ast_model *m, int fd, size_t hdr, int loaded) {
    param_table *t = &m->params;
    size_t pg = page_size();
    char *base = (char *)t->data;
    long long mapped = 0;
    int i = 0;
    while (i < t->nrows) {
        const param_row *r = &t->rows[i];
        if (!r->backbone) { i++; continue; }
        // A run: consecutive backbone rows of one kind (frozen or not), [a, b) bytes.
        int frozen = !r->trainable && !r->buffer, j = i;
        size_t a = r->offset * sizeof(float), b = a;
        while (j < t->nrows && (!t->rows[j].backbone ||
                                (!t->rows[j].trainable && !t->rows[j].buffer) == frozen)) {
            if (t->rows[j].backbone) b = (t->rows[j].offset + t->rows[j].n) * sizeof(float);
            j++;
        }
        size_t A = frozen ? (a + pg - 1) / pg * pg : b, B = frozen ? b / pg * pg : b;
        if (B <= A) A = B = b;
        if (B > A) {
            void *p = mmap(base + A, B - A, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
                           (off_t)(hdr + A));
            if (p == MAP_FAILED) {
                mmap(base, t->nbackbone * sizeof(float), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
                return -1;
            }
            mapped += (long long)(B - A);
        }
        if (!loaded && (image_read(t->data, fd, hdr, a, A) || image_read(t->data, fd, hdr, B, b)))
            return -1;
        i = j;
    }
    return mapped;
}

// Removes the folder's images whose source file is gone or has changed since
// (so images do not pile up), and temporary files of builds whose process
// has died. A process still mapping an image keeps its pages.
// Lock files go with their images, except `keep`'s (held by the caller).
static void prune_images(const char *dir, const char *keep) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[PATH_MAX + 300], head[PATH_MAX + 256], src[PATH_MAX];
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        const char *tmp = strstr(e->d_name, ".img.tmp.");
        if (tmp) {  // a build that died (its process is gone) left it
            long pid = atol(tmp + 9);
            if (pid > 0 && kill((pid_t)pid, 0) && errno == ESRCH) unlink(path);
            continue;
        }
        if (n < 5 || strcmp(e->d_name + n - 4, ".img")) continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t got = pread(fd, head, sizeof head - 1, 0);
        close(fd);
        head[got > 0 ? got : 0] = 0;
        unsigned long long dev, ino;
        long long size, sec;
        long nsec;
        struct stat sb;
        int ok = sscanf(head, "petal backbone image 1\nsource %4095[^\n]\ndev %llu ino %llu size %lld "
                        "mtime %lld.%ld", src, &dev, &ino, &size, &sec, &nsec) == 6;
        int live = ok && !stat(src, &sb) && sb.st_dev == dev && sb.st_ino == ino &&
                   sb.st_size == size && sb.st_mtim.tv_sec == sec && sb.st_mtim.tv_nsec == nsec;
        if (!live) {
            unlink(path);
            snprintf(path, sizeof path, "%s/%s.lock", dir, e->d_name);
            if (strcmp(path, keep)) unlink(path);
        }
    }
    closedir(d);
}

// Shares m's backbone rows through the node's image of `path` (building it
// if needed). *shared = 1 when done; 0 when the image cannot be used (a
// warning says why; the caller loads privately) or when less than 64 KiB of
// the backbone is frozen. Returns a load error only.
static int share_backbone(int *shared, ast_model *m, const char *path, const char *dir,
                          int file_frames, petal_err *warn, petal_err *err) {
    *shared = 0;
    param_table *t = &m->params;
    size_t frozen = 0;
    for (int i = 0; i < t->nrows; i++)
        if (t->rows[i].backbone && !t->rows[i].trainable) frozen += t->rows[i].n;
    if (frozen * sizeof(float) < (size_t)64 << 10) return PETAL_OK;  // full fine-tuning: nothing to share
    char real[PATH_MAX], img[PATH_MAX + 64], lock[PATH_MAX + 80];
    struct stat sb;
    petal_err why = {0};
    if (!realpath(path, real) || stat(real, &sb))
        return petal_fail(err, PETAL_EINPUT, "%s: %s", path, strerror(errno));
    size_t pg = page_size(), bytes = t->nbackbone * sizeof(float);
    char *hdr = petal_malloc(pg);
    uint64_t layout = layout_hash(t);
    image_header(hdr, pg, real, &sb, m, layout);
    // One image per (source path, layout): a changed source file rebuilds it in place.
    uint64_t key = fnv1a(fnv1a(0xcbf29ce484222325ULL, real, strlen(real)), &layout, sizeof layout);
    snprintf(img, sizeof img, "%s/%016llx.img", dir, (unsigned long long)key);
    snprintf(lock, sizeof lock, "%s.lock", img);
    int st = PETAL_OK, lfd = -1, fd = -1, loaded = 0;
    struct stat db;
    if (mkdir(dir, 0700) && (errno != EEXIST || stat(dir, &db) || !S_ISDIR(db.st_mode))) {
        petal_fail(&why, PETAL_EFAIL, "backbone cache %s: %s", dir,
                   errno == EEXIST ? "not a folder" : strerror(errno));
        goto out;
    }
    fd = open(img, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || image_check(fd, hdr, pg, bytes)) {
        if (fd >= 0) close(fd);
        if ((lfd = petal_lock(lock, &why)) < 0) goto out;
        fd = open(img, O_RDONLY | O_CLOEXEC);  // someone may have built it while we waited
        if (fd < 0 || image_check(fd, hdr, pg, bytes)) {
            if (fd >= 0) close(fd);
            fd = -1;
            if ((st = load_rows(m, path, 1, 0, file_frames, err))) goto out;
            loaded = 1;
            prune_images(dir, lock);
            if (image_write(img, hdr, pg, t->data, bytes, &why)) goto out;
            if ((fd = open(img, O_RDONLY | O_CLOEXEC)) < 0) {
                petal_fail(&why, PETAL_EFAIL, "%s: cannot open (%s)", img, strerror(errno));
                goto out;
            }
        }
    }
    long long mapped = image_map(m, fd, pg, loaded);
    if (mapped < 0) {
        petal_fail(&why, PETAL_EFAIL, "%s: cannot map (%s)", img, strerror(errno));
        goto out;
    }
    t->nshared = (size_t)mapped;
    *shared = 1;
out:
    if (!st && !*shared && why.msg[0])
        petal_fail(warn, PETAL_OK, "%s; loading a private copy of the backbone", why.msg);
    if (fd >= 0) close(fd);
    if (lfd >= 0) close(lfd);
    free(hdr);
    return st;
}

int backbone_load(ast_model *m, const char *path, int with_head, const char *share_dir,
                  petal_err *warn, petal_err *err) {
    if (warn) warn->msg[0] = 0;
    int file_frames = 0, st = check_sizes(m, path, with_head, &file_frames, err);
    if (st) return st;
    if (share_dir) {
        int shared = 0;
        if ((st = share_backbone(&shared, m, path, share_dir, file_frames, warn, err))) return st;
        if (shared) return with_head ? load_rows(m, path, 0, 1, file_frames, err) : PETAL_OK;
    }
    return load_rows(m, path, 1, with_head, file_frames, err);
}

void backbone_regrid_pos(float *dst, int t_new, const float *src, int t_old, int f_dim, int C) {
    memcpy(dst, src, 2 * (size_t)C * sizeof *dst);
    // torch's area_pixel_compute_source_index: src = scale (j + 1/2) - 1/2,
    // scale = t_old / t_new, clamped at 0; the right neighbour clamps at the edge.
    double scale = (double)t_old / t_new;
    for (int j = 0; j < t_new; j++) {
        double s = scale * (j + 0.5) - 0.5;
        if (s < 0) s = 0;
        int i0 = (int)s, i1 = i0 < t_old - 1 ? i0 + 1 : i0;
        double l1 = s - i0, l0 = 1.0 - l1;
        for (int fi = 0; fi < f_dim; fi++) {
            const float *a = src + (2 + (size_t)fi * t_old + i0) * C;
            const float *b = src + (2 + (size_t)fi * t_old + i1) * C;
            float *o = dst + (2 + (size_t)fi * t_new + j) * C;
            for (int k = 0; k < C; k++) o[k] = (float)(l0 * a[k] + l1 * b[k]);
        }
    }
}

// ---- HuggingFace import -----------------------------------------------------------

// Whole file into a NUL-terminated buffer.
static int read_text(char **out, size_t *n, const char *path, petal_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return petal_fail(err, PETAL_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > (64 << 20)) {
        fclose(fp);
        return petal_fail(err, PETAL_EINPUT, "%s: not a regular file of at most 64 MiB", path);
    }
    size_t size = (size_t)sb.st_size;
    char *buf = petal_malloc(size + 1);
    size_t got = fread(buf, 1, size, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (bad || got != size) {
        free(buf);
        return petal_fail(err, PETAL_EINPUT, "%s: read error", path);
    }
    buf[size] = 0;
    *out = buf;
    *n = size;
    return PETAL_OK;
}

// A short rendering of a JSON value for messages.
static const char *show(const json_value *v, char *buf, size_t n) {
    if (v->type == JSON_NUMBER) snprintf(buf, n, "%.17g", v->num);
    else if (v->type == JSON_STRING) snprintf(buf, n, "\"%.40s\"", v->str);
    else snprintf(buf, n, "a%s %s", v->type == JSON_ARRAY || v->type == JSON_OBJECT ? "n" : "",
                  json_type_name(v->type));
    return buf;
}

static int cfg_int(int *out, const json_value *root, const char *key, int lo, int hi,
                   const char *path, petal_err *err) {
    const json_value *v = json_get(root, key);
    if (!v)
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: missing field \"%s\"", path, root->line,
                          root->col, key);
    long long x;
    char b[64];
    if (!json_int(v, &x, lo, hi))
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: field \"%s\" must be an integer in [%d, %d], "
                          "got %s", path, v->line, v->col, key, lo, hi, show(v, b, sizeof b));
    *out = (int)x;
    return PETAL_OK;
}

// config.json -> sizes (frames = max_length), whether the architecture is a
// classifier, and id2label (labels NULL, *K 0 when absent).
static int parse_hf_config(ast_config *cfg, int *arch_classifier, char ***labels, int *K,
                           const json_value *root, const char *path, petal_err *err) {
    *labels = NULL;
    *K = 0;
    *arch_classifier = 0;
    if (root->type != JSON_OBJECT)
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: expected a JSON object, got %s", path,
                          root->line, root->col, json_type_name(root->type));
    memset(cfg, 0, sizeof *cfg);
    const struct {
        const char *key;
        int *v;
        int lo, hi;
    } f[] = {{"hidden_size", &cfg->C, 1, 1 << 16},
             {"num_hidden_layers", &cfg->L, 0, 1024},
             {"num_attention_heads", &cfg->NH, 1, 1024},
             {"intermediate_size", &cfg->MLP, 1, 1 << 20},
             {"num_mel_bins", &cfg->F, 1, 4096},
             {"max_length", &cfg->frames, 1, 1 << 20},
             {"patch_size", &cfg->patch, 1, 1024},
             {"frequency_stride", &cfg->fstride, 1, 1024},
             {"time_stride", &cfg->tstride, 1, 1024}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int st = cfg_int(f[i].v, root, f[i].key, f[i].lo, f[i].hi, path, err);
        if (st) return st;
    }
    char b[64];
    const json_value *eps = json_get(root, "layer_norm_eps");
    if (!eps)
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: missing field \"layer_norm_eps\"", path,
                          root->line, root->col);
    if (eps->type != JSON_NUMBER || !(eps->num > 0 && eps->num < 1))
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: field \"layer_norm_eps\" must be a number "
                          "in (0, 1), got %s", path, eps->line, eps->col, show(eps, b, sizeof b));
    cfg->ln_eps = (float)eps->num;
    // Settings that would change the computation: only the ones petal implements.
    const json_value *act = json_get(root, "hidden_act");
    if (act && !(act->type == JSON_STRING && !strcmp(act->str, "gelu")))
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: hidden_act %s is not supported (gelu)",
                          path, act->line, act->col, show(act, b, sizeof b));
    const json_value *qkvb = json_get(root, "qkv_bias");
    if (qkvb && !(qkvb->type == JSON_BOOL && qkvb->num == 1))
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: qkv_bias must be true (petal's "
                          "projections have biases)", path, qkvb->line, qkvb->col);
    const json_value *arch = json_get(root, "architectures");
    if (arch && arch->type == JSON_ARRAY)
        for (size_t i = 0; i < arch->len; i++)
            if (arch->items[i].type == JSON_STRING &&
                !strcmp(arch->items[i].str, "ASTForAudioClassification"))
                *arch_classifier = 1;
    const json_value *id2 = json_get(root, "id2label");
    if (!id2) return PETAL_OK;
    if (id2->type != JSON_OBJECT || id2->len < 1 || id2->len > 1000000)
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: id2label must be a non-empty object", path,
                          id2->line, id2->col);
    int n = (int)id2->len;
    char **lab = petal_calloc((size_t)n, sizeof *lab);
    for (int i = 0; i < n; i++) {
        const json_value *v = &id2->items[i];
        char *end;
        long id = strtol(id2->keys[i], &end, 10);
        const char *why = NULL;
        if (!id2->keys[i][0] || *end || id < 0 || id >= n) why = "keys must be 0 .. K-1";
        else if (lab[id]) why = "keys must be 0 .. K-1, each once";
        else if (v->type != JSON_STRING) why = "values must be strings";
        if (why) {
            backbone_labels_free(lab, n);
            return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: id2label entry \"%.40s\": %s", path,
                              v->line, v->col, id2->keys[i], why);
        }
        lab[id] = petal_malloc(v->len + 1);
        memcpy(lab[id], v->str, v->len + 1);
    }
    *labels = lab;
    *K = n;
    return PETAL_OK;
}

static void shape_str(char *buf, size_t n, int ndim, const long long *shape) {
    int k = snprintf(buf, n, "(");
    for (int i = 0; i < ndim && k > 0 && (size_t)k < n; i++)
        k += snprintf(buf + k, n - (size_t)k, i ? ", %lld" : "%lld", shape[i]);
    if (k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, ")");
}

// Copies the checkpoint's tensors into m (names, shapes, dtypes checked; the
// position embeddings re-gridded from t_old patches along time).
static int copy_tensors(ast_model *m, const st_file *sf, const char *prefix, int head, int t_old,
                        petal_err *err) {
    const param_table *t = &m->params;
    const ast_config *c = &m->cfg;
    int f_dim = ast_fdim(c), t_new = ast_tdim(c);
    unsigned char *used = petal_calloc((size_t)(sf->n ? sf->n : 1), 1);
    int st = PETAL_OK;
    for (int i = 0; i < t->nrows && !st; i++) {
        const param_row *r = &t->rows[i];
        int is_head = is_head_row(r);
        if (!(r->backbone || (head && is_head))) continue;
        char name[PARAM_NAME_MAX + 64], want[96], got[96];
        snprintf(name, sizeof name, "%s%s", is_head ? "" : prefix, r->name);
        long long shape[PARAM_MAX_DIMS];
        for (int k = 0; k < r->ndim; k++) shape[k] = r->shape[k];
        int is_pos = !strcmp(r->name, pos_name);
        if (is_pos) shape[1] = 2 + (long long)f_dim * t_old;
        const st_tensor *x = st_find(sf, name);
        if (!x) {
            st = petal_fail(err, PETAL_EINPUT, "%s: missing tensor %s", sf->path, name);
            break;
        }
        used[x - sf->t] = 1;
        int ok = x->ndim == r->ndim;
        for (int k = 0; ok && k < r->ndim; k++) ok = x->shape[k] == shape[k];
        if (!ok) {
            shape_str(want, sizeof want, r->ndim, shape);
            shape_str(got, sizeof got, x->ndim, x->shape);
            st = petal_fail(err, PETAL_EINPUT, "%s: tensor %s has shape %s, expected %s", sf->path,
                            name, got, want);
        } else if (x->dtype == ST_OTHER) {
            st = petal_fail(err, PETAL_EINPUT, "%s: tensor %s has dtype %s (F32, F16, BF16 or F64 "
                            "expected)", sf->path, name, x->dtype_name);
        } else if (is_pos && t_old != t_new) {
            float *tmp = petal_falloc(x->nelem);
            st_read_f32(tmp, sf, x);
            backbone_regrid_pos(param_data(t, i), t_new, tmp, t_old, f_dim, c->C);
            free(tmp);
        } else {
            st_read_f32(param_data(t, i), sf, x);
        }
    }
    for (int i = 0; i < sf->n && !st; i++)
        if (!used[i])
            st = petal_fail(err, PETAL_EINPUT, "%s: unexpected tensor %s (not in an AST%s with "
                            "config.json's sizes)", sf->path, sf->t[i].name,
                            head ? " classifier" : "");
    free(used);
    return st;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int backbone_import_hf(ast_model *m, int *has_head, char ***labels, const char *dir, int frames,
                       petal_err *err) {
    memset(m, 0, sizeof *m);
    *has_head = 0;
    *labels = NULL;
    size_t dl = strlen(dir);
    char *cpath = petal_malloc(dl + 32), *spath = petal_malloc(dl + 32);
    snprintf(cpath, dl + 32, "%s/config.json", dir);
    snprintf(spath, dl + 32, "%s/model.safetensors", dir);
    char *text = NULL, **lab = NULL;
    size_t n = 0;
    json_value *root = NULL;
    st_file sf = {0};
    int K = 0, arch_cls = 0, model_ready = 0;
    ast_config cfg;
    int st = read_text(&text, &n, cpath, err);
    if (!st) st = json_parse(&root, text, n, cpath, err);
    if (!st) st = parse_hf_config(&cfg, &arch_cls, &lab, &K, root, cpath, err);
    if (st) goto out;
    if (!file_exists(spath)) {
        // spath is "<dir>/model.safetensors": swap the name (a memcpy, since
        // GCC's format checks under -fsanitize flags misjudge snprintf here)
        memcpy(spath + dl, "/pytorch_model.bin", sizeof "/pytorch_model.bin");
        if (file_exists(spath))
            st = petal_fail(err, PETAL_EINPUT, "%s: PyTorch pickle checkpoints are not read; "
                            "give a directory with model.safetensors", spath);
        else
            st = petal_fail(err, PETAL_EINPUT, "%s/model.safetensors: no such file", dir);
        goto out;
    }
    st = st_open(&sf, spath, err);
    if (st) goto out;
    const char *prefix = "audio_spectrogram_transformer.";
    if (!st_find(&sf, "audio_spectrogram_transformer.embeddings.cls_token")) {
        prefix = "";
        if (!st_find(&sf, "embeddings.cls_token")) {
            st = petal_fail(err, PETAL_EINPUT, "%s: missing tensor audio_spectrogram_transformer."
                            "embeddings.cls_token (not an AST checkpoint?)", spath);
            goto out;
        }
    }
    int head = arch_cls || st_find(&sf, "classifier.dense.weight");
    const st_tensor *hb = st_find(&sf, "classifier.dense.bias");
    if (head && !K) K = hb && hb->ndim == 1 ? (int)hb->shape[0] : 0;  // no id2label
    if (head && K < 2) {
        st = petal_fail(err, PETAL_EINPUT, "%s: classifier with %d classes (id2label in %s or "
                        "classifier.dense.bias gives K >= 2)", spath, K, cpath);
        goto out;
    }
    cfg.K = head ? K : 2;  // a head-less backbone still gets an (unused, unsaved) head
    cfg.head_ln = head;
    cfg.pool = head ? POOL_CLS_DIST : POOL_ALL;
    char msg[sizeof err->msg];
    st = ast_config_check(&cfg, err);  // the checkpoint's own sizes first
    if (st) {
        snprintf(msg, sizeof msg, "%s", err->msg);
        st = petal_fail(err, PETAL_EINPUT, "%s: %s", cpath, msg);
        goto out;
    }
    int t_old = ast_tdim(&cfg);
    if (frames > 0) cfg.frames = frames;
    ast_method meth;
    st = ast_method_parse(&meth, "linear", err);
    if (!st) st = ast_model_init(m, &cfg, &meth, 1, err);
    if (st) {
        snprintf(msg, sizeof msg, "%s", err->msg);
        st = petal_fail(err, PETAL_EINPUT, "%s with %d frames: %s", dir, cfg.frames, msg);
        goto out;
    }
    model_ready = 1;
    st = copy_tensors(m, &sf, prefix, head, t_old, err);
    if (!st) {
        *has_head = head;
        if (head && lab) {
            *labels = lab;
            lab = NULL;
        }
    }
out:
    if (st && model_ready) ast_model_free(m);
    backbone_labels_free(lab, K);
    st_close(&sf);
    json_free(root);
    free(text);
    free(cpath);
    free(spath);
    return st;
}
