// Parameter table: layout, lookup and HDF5 load/save by name.
#include "core/params.h"

#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include "core/h5.h"

int param_add(param_table *t, const char *name, int slot, int trainable, int ndim, const int *shape) {
    PETAL_ASSERT(t->data == NULL);  // no rows after allocation
    PETAL_ASSERT(ndim >= 1 && ndim <= PARAM_MAX_DIMS);
    PETAL_ASSERT(strlen(name) < PARAM_NAME_MAX);
    size_t cap = (size_t)t->cap;
    t->rows = petal_grow(t->rows, &cap, (size_t)t->nrows + 1, sizeof *t->rows);
    t->cap = (int)cap;
    param_row *r = &t->rows[t->nrows];
    memset(r, 0, sizeof *r);
    strcpy(r->name, name);
    r->ndim = ndim;
    r->slot = slot;
    r->trainable = (unsigned char)(trainable != 0);
    r->decay = 1;  // AdamW decays every tensor by default, as torch.optim.AdamW does
    if (sscanf(name, "encoder.layer.%d.", &r->layer) != 1) r->layer = -1;
    r->n = 1;
    for (int i = 0; i < ndim; i++) {
        r->shape[i] = shape[i];
        PETAL_ASSERT(r->shape[i] > 0);
        r->n *= (size_t)r->shape[i];
    }
    return t->nrows++;
}

// Each tensor starts on a 64-byte boundary so vector loops stay aligned.
static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

// Backbone rows first, then the method's own rows, each part in table order,
// so the backbone region's layout depends on the architecture alone and one
// node-wide image of it serves every method (core/backbone_image.c). The buffer is an
// anonymous mapping: page-aligned, zero, and resident only where written.
void param_table_alloc(param_table *t) {
    size_t off = 0, goff = 0;
    for (int part = 1; part >= 0; part--) {
        for (int i = 0; i < t->nrows; i++) {
            param_row *r = &t->rows[i];
            if (r->backbone != part) continue;
            r->offset = off;
            off += round16(r->n);
        }
        if (part) {
            off = (off + PARAM_PAGE_FLOATS - 1) / PARAM_PAGE_FLOATS * PARAM_PAGE_FLOATS;
            t->nbackbone = off;
        }
    }
    // Moments: every trainable row in table order. Gradients: the same, or with
    // layer_grads the rows outside the layers first, then one block as large as
    // the largest layer's rows, each layer's rows at their offsets within it.
    size_t mom = 0, outside = 0, block = 0;
    for (int i = 0; i < t->nrows; i++) {
        param_row *r = &t->rows[i];
        r->moff = r->trainable ? (ptrdiff_t)mom : -1;
        if (r->trainable) mom += round16(r->n);
        if (r->trainable && r->layer < 0) outside += round16(r->n);
    }
    ptrdiff_t start = 0;  // moment offset of the current layer's first trainable row
    for (int i = 0, l = -1; i < t->nrows; i++) {
        param_row *r = &t->rows[i];
        if (!r->trainable) {
            r->goff = -1;
        } else if (!t->layer_grads) {
            r->goff = r->moff;
        } else if (r->layer < 0) {
            r->goff = (ptrdiff_t)goff;
            goff += round16(r->n);
        } else {
            // A layer's rows come together in table order (model.c adds them in one pass).
            PETAL_ASSERT(r->layer >= l);
            if (r->layer != l) start = r->moff, l = r->layer;
            r->goff = (ptrdiff_t)outside + (r->moff - start);
            size_t end = (size_t)(r->goff - (ptrdiff_t)outside) + round16(r->n);
            block = end > block ? end : block;
        }
    }
    goff = t->layer_grads ? outside + block : mom;
    t->ndata = off;
    t->ngrad = goff;
    t->glayer = t->layer_grads ? outside : goff;
    t->nmom = mom;
    size_t bytes = (off ? off : 1) * sizeof(float);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) petal_oom(bytes);
    t->data = p;
    t->grad = goff ? petal_falloc(goff) : NULL;
}

void param_table_free(param_table *t) {
    free(t->rows);
    if (t->data) munmap(t->data, (t->ndata ? t->ndata : 1) * sizeof(float));
    free(t->grad);
    memset(t, 0, sizeof *t);
}

int param_find(const param_table *t, const char *name) {
    for (int i = 0; i < t->nrows; i++)
        if (!strcmp(t->rows[i].name, name)) return i;
    return -1;
}

float *param_data(const param_table *t, int row) {
    PETAL_ASSERT(row >= 0 && row < t->nrows && t->data);
    return t->data + t->rows[row].offset;
}

float *param_grad(const param_table *t, int row) {
    PETAL_ASSERT(row >= 0 && row < t->nrows);
    return t->rows[row].goff < 0 ? NULL : t->grad + t->rows[row].goff;
}

size_t param_count(const param_table *t, int trainable_only) {
    size_t n = 0;
    for (int i = 0; i < t->nrows; i++)
        if (trainable_only ? t->rows[i].trainable || t->rows[i].inert : !t->rows[i].buffer)
            n += t->rows[i].n;
    return n;
}

int param_lowest_trainable_slot(const param_table *t) {
    int lo = INT_MAX;
    for (int i = 0; i < t->nrows; i++)
        if (t->rows[i].trainable && t->rows[i].slot < lo) lo = t->rows[i].slot;
    return lo;
}

void param_init(param_table *t, uint64_t seed, int skip_backbone) {
    petal_rng rng;
    petal_rng_seed(&rng, seed);
    for (int i = 0; i < t->nrows; i++) {
        const param_row *r = &t->rows[i];
        // A skipped row still draws its numbers (so the other rows' values do
        // not depend on skipping) but leaves its pages untouched.
        int keep = !(skip_backbone && r->backbone);
        float *d = param_data(t, i), sc = r->init_scale;
        for (size_t k = 0; k < r->n; k++) {
            float v;
            switch (r->init) {
            case PARAM_INIT_ZERO: v = 0.0f; break;
            case PARAM_INIT_ONE: v = 1.0f; break;
            case PARAM_INIT_UNIFORM: v = (float)(sc * (2.0 * petal_rng_uniform(&rng) - 1.0)); break;
            case PARAM_INIT_NORMAL: v = (float)(sc * petal_rng_normal(&rng)); break;
            default: {  // truncated at 2 standard deviations
                double z;
                do z = petal_rng_normal(&rng);
                while (fabs(z) > 2.0);
                v = (float)(sc * z);
            }
            }
            if (keep) d[k] = v;
        }
    }
}

void param_shape_str(char *buf, size_t n, const param_row *r) {
    int k = snprintf(buf, n, "(");
    for (int i = 0; i < r->ndim && k > 0 && (size_t)k < n; i++)
        k += snprintf(buf + k, n - (size_t)k, i ? ", %d" : "%d", r->shape[i]);
    if (k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, ")");
}

int param_selected(const param_row *r, int which) {
    if (which == PARAM_BACKBONE) return r->backbone;
    if (which == PARAM_STATE) return r->trainable || r->buffer;
    return 1;
}

size_t param_count_selected(const param_table *t, int which) {
    size_t n = 0;
    for (int i = 0; i < t->nrows; i++)
        if (param_selected(&t->rows[i], which)) n += t->rows[i].n;
    return n;
}

void param_pack(float *buf, const param_table *t, int which) {
    for (int i = 0; i < t->nrows; i++)
        if (param_selected(&t->rows[i], which)) {
            memcpy(buf, param_data(t, i), t->rows[i].n * sizeof *buf);
            buf += t->rows[i].n;
        }
}

void param_unpack(param_table *t, const float *buf, int which) {
    for (int i = 0; i < t->nrows; i++)
        if (param_selected(&t->rows[i], which)) {
            memcpy(param_data(t, i), buf, t->rows[i].n * sizeof *buf);
            buf += t->rows[i].n;
        }
}

int param_load_h5(param_table *t, const char *path, const char *group, int which,
                  petal_err *err) {
    h5_quiet quiet = h5_quiet_begin();  // petal reports HDF5 errors itself
    int status = PETAL_OK;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        status = petal_fail(err, PETAL_EINPUT, "%s: cannot open as HDF5", path);
        goto out;
    }
    for (int i = 0; i < t->nrows && status == PETAL_OK; i++) {
        param_row *r = &t->rows[i];
        if (!param_selected(r, which)) continue;
        char dname[PARAM_NAME_MAX + 128], want[64], got[64];
        snprintf(dname, sizeof dname, "%s/%s", group, r->name);
        hid_t d = H5Dopen2(f, dname, H5P_DEFAULT);
        if (d < 0) {
            status = petal_fail(err, PETAL_EINPUT, "%s: missing tensor %s", path, dname);
            break;
        }
        hid_t s = H5Dget_space(d), ty = -1;
        hsize_t dims[8] = {0};
        int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
        int ok = nd == r->ndim && nd <= 8;
        if (nd >= 1 && nd <= 8) H5Sget_simple_extent_dims(s, dims, NULL);  // for the message too
        for (int k = 0; ok && k < nd; k++) ok &= dims[k] == (hsize_t)r->shape[k];
        if (!ok) {
            param_shape_str(want, sizeof want, r);
            int k = snprintf(got, sizeof got, "(");
            for (int j = 0; j < nd && j < 8 && k < (int)sizeof got; j++)
                k += snprintf(got + k, sizeof got - (size_t)k, j ? ", %llu" : "%llu",
                              (unsigned long long)dims[j]);
            if (k < (int)sizeof got) snprintf(got + k, sizeof got - (size_t)k, ")");
            status = petal_fail(err, PETAL_EINPUT, "%s: tensor %s has shape %s, expected %s", path,
                                dname, got, want);
        } else if ((ty = H5Dget_type(d)) < 0 || H5Tget_class(ty) != H5T_FLOAT) {
            // HDF5 would convert integers silently: weights are floating point
            status = petal_fail(err, PETAL_EINPUT, "%s: tensor %s is not floating point", path,
                                dname);
        } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                           param_data(t, i)) < 0) {
            status = petal_fail(err, PETAL_EINPUT, "%s: cannot read tensor %s", path, dname);
        } else {
            // A NaN or Inf in a frozen weight can vanish in attention's softmax
            // and train on with finite losses: refuse it here, by name.
            const float *x = param_data(t, i);
            for (size_t k = 0; k < r->n; k++)
                if (!isfinite(x[k])) {
                    status = petal_fail(err, PETAL_EINPUT, "%s: tensor %s holds %g at element %zu",
                                        path, dname, (double)x[k], k);
                    break;
                }
        }
        if (ty >= 0) H5Tclose(ty);
        if (s >= 0) H5Sclose(s);
        H5Dclose(d);
    }
    H5Fclose(f);
out:
    h5_quiet_end(quiet);
    return status;
}

// Creates every missing group along `path` (HDF5 wants parents to exist).
static int ensure_groups(hid_t file, const char *path) {
    char buf[PARAM_NAME_MAX + 128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) {
            hid_t g = H5Gcreate2(file, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g < 0) return -1;
            H5Gclose(g);
        }
        *p = '/';
    }
    return 0;
}

int param_save_h5(const param_table *t, long long file_id, const char *group, int which,
                  petal_err *err) {
    hid_t f = (hid_t)file_id;
    for (int i = 0; i < t->nrows; i++) {
        const param_row *r = &t->rows[i];
        if (!param_selected(r, which)) continue;
        char dname[PARAM_NAME_MAX + 128];
        snprintf(dname, sizeof dname, "%s/%s", group, r->name);
        hsize_t dims[PARAM_MAX_DIMS];
        for (int k = 0; k < r->ndim; k++) dims[k] = (hsize_t)r->shape[k];
        if (ensure_groups(f, dname) < 0)
            return petal_fail(err, PETAL_EFAIL, "cannot create HDF5 groups for %s", dname);
        hid_t s = H5Screate_simple(r->ndim, dims, NULL);
        hid_t d = s < 0 ? -1
                        : H5Dcreate2(f, dname, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT,
                                     H5P_DEFAULT);
        int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                    param_data(t, i)) >= 0;
        if (d >= 0) H5Dclose(d);
        if (s >= 0) H5Sclose(s);
        if (!ok) return petal_fail(err, PETAL_EFAIL, "cannot write tensor %s", dname);
    }
    return PETAL_OK;
}
