// Small HDF5 helpers shared by the files petal writes (checkpoints, backbones):
// scalar attributes, strings, whole datasets. They return 0 or -1; callers
// turn -1 into a message naming their file and field.
#ifndef PETAL_H5_H
#define PETAL_H5_H
#include <hdf5.h>

int h5_put_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v);
int h5_put_int(hid_t obj, const char *name, int v);
int h5_put_i64(hid_t obj, const char *name, long long v);
// A fixed-length, NUL-terminated string attribute.
int h5_put_str(hid_t obj, const char *name, const char *v);
// A numeric attribute converted to mem_type; -1 if absent or unreadable.
int h5_get_attr(hid_t obj, const char *name, hid_t mem_type, void *v);
// A fixed- or variable-length string attribute, malloc'd; NULL if absent.
char *h5_get_str(hid_t obj, const char *name);
// A dataset of rank dims, written whole.
int h5_put_data(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v,
                int rank, const hsize_t *dims);
// A dataset read whole into v; -1 unless it holds exactly n elements.
int h5_get_data(hid_t obj, const char *name, hid_t mem_type, void *v, hsize_t n);
// Makes a finished temporary file the real one: fsync it, rename it over path,
// fsync the folder. 0, or -1 with errno set and tmp removed.
int file_commit(const char *tmp, const char *path);
// HDF5's own error printing, off while petal reports errors itself (with the
// file and field) and back on with h5_quiet_end.
typedef struct {
    H5E_auto2_t fn;
    void *data;
} h5_quiet;
h5_quiet h5_quiet_begin(void);
void h5_quiet_end(h5_quiet q);
#endif
