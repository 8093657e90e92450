// ==== HDF5 helpers: attributes, strings, whole datasets ===========================
#include "core/h5.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"

int h5_put_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = s < 0 ? -1 : H5Acreate2(obj, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, mem_type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    return ok ? 0 : -1;
}

int h5_put_int(hid_t obj, const char *name, int v) {
    return h5_put_attr(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v);
}

int h5_put_i64(hid_t obj, const char *name, long long v) {
    return h5_put_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &v);
}

int h5_put_str(hid_t obj, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    H5Tset_size(t, strlen(v) ? strlen(v) : 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    int st = h5_put_attr(obj, name, t, t, v);
    H5Tclose(t);
    return st;
}

int h5_get_attr(hid_t obj, const char *name, hid_t mem_type, void *v) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    int ok = a >= 0 && H5Aread(a, mem_type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok ? 0 : -1;
}

char *h5_get_str(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    char *out = NULL;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(t));
            if (H5Aread(a, mt, &s) >= 0 && s) {
                out = petal_malloc(strlen(s) + 1);
                strcpy(out, s);
            }
            free(s);  // HDF5 allocates variable-length strings with malloc by default
            H5Tclose(mt);
        } else {
            size_t len = H5Tget_size(t);
            out = petal_calloc(len + 1, 1);
            if (H5Aread(a, t, out) < 0) {
                free(out);
                out = NULL;
            }
        }
    }
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return out;
}

int h5_put_data(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v,
                int rank, const hsize_t *dims) {
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = s < 0 ? -1 : H5Dcreate2(obj, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Sclose(s);
    return ok ? 0 : -1;
}

int h5_get_data(hid_t obj, const char *name, hid_t mem_type, void *v, hsize_t n) {
    if (H5Lexists(obj, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(obj, name, H5P_DEFAULT);
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    int ok = s >= 0 && H5Sget_simple_extent_npoints(s) == (hssize_t)n &&
             H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return ok ? 0 : -1;
}

// HDF5 closes every file still open at exit (an atexit handler). A file whose
// H5Fclose failed (a full disk, a write error) is left half-closed, and that
// handler then crashes inside H5F__close_cb (HDF5 1.10): a clean "cannot
// write" would end in SIGSEGV. petal closes every file it writes itself and
// checks the result, so the handler has nothing to do: it is turned off
// before HDF5's first use (H5dont_atexit must precede every other call).
__attribute__((constructor)) static void h5_no_atexit(void) { H5dont_atexit(); }

h5_quiet h5_quiet_begin(void) {
    h5_quiet q;
    H5Eget_auto2(H5E_DEFAULT, &q.fn, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}

void h5_quiet_end(h5_quiet q) { H5Eset_auto2(H5E_DEFAULT, q.fn, q.data); }

int file_commit(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC), bad = fd < 0 || fsync(fd);
    if (fd >= 0) close(fd);
    if (!bad) bad = rename(tmp, path) != 0;
    if (bad) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    if ((fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) fsync(fd), close(fd);
    return 0;
}
