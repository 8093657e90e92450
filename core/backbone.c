// ==== Backbone files: the format (save, read, load) and position re-gridding ====
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


#include "core/backbone_internal.h"
#include "core/h5.h"

int backbone_is_head_row(const param_row *r) { return !strncmp(r->name, "classifier.", 11); }

const char *const backbone_pos_name = "embeddings.position_embeddings";

// A table over some of t's rows (copied row records marked backbone, sharing
// t's data buffer), so that param_load_h5 / param_save_h5 act on exactly those
// rows. Free with free(view.rows) only.
static param_table view_rows(const param_table *t, int with_backbone, int with_head,
                             int skip_pos) {
    param_table v = {0};
    v.rows = petal_calloc((size_t)(t->nrows ? t->nrows : 1), sizeof *v.rows);
    for (int i = 0; i < t->nrows; i++) {
        const param_row *r = &t->rows[i];
        if (!((with_backbone && r->backbone) || (with_head && backbone_is_head_row(r)))) continue;
        if (skip_pos && !strcmp(r->name, backbone_pos_name)) continue;
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
int backbone_load_rows(ast_model *m, const char *path, int with_backbone, int with_head,
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
    snprintf(row.name, sizeof row.name, "%s", backbone_pos_name);
    pv.rows = &row;
    pv.nrows = pv.cap = 1;
    pv.data = petal_falloc(n_old);
    pv.ndata = n_old;
    st = param_load_h5(&pv, path, "params", 1, err);
    if (!st) backbone_regrid_pos(m->w.pos, t_new, pv.data, t_old, f_dim, C);
    free(pv.data);
    return st;
}


int backbone_load(ast_model *m, const char *path, int with_head, const char *share_dir,
                  petal_err *warn, petal_err *err) {
    if (warn) warn->msg[0] = 0;
    int file_frames = 0, st = check_sizes(m, path, with_head, &file_frames, err);
    if (st) return st;
    if (share_dir) {
        int shared = 0;
        if ((st = backbone_share(&shared, m, path, share_dir, file_frames, warn, err))) return st;
        if (shared) return with_head ? backbone_load_rows(m, path, 0, 1, file_frames, err) : PETAL_OK;
    }
    return backbone_load_rows(m, path, 1, with_head, file_frames, err);
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

