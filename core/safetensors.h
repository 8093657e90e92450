// Reader of the .safetensors format (HF checkpoints): 8-byte little-endian
// header length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets":
// [begin, end]}, optional "__metadata__"}, then the raw little-endian tensor
// bytes; offsets are relative to the end of the header. The file is memory
// mapped; every entry is validated when the file is opened, so reads cannot fail.
#ifndef PETAL_SAFETENSORS_H
#define PETAL_SAFETENSORS_H
#include <stddef.h>

#include "core/common.h"

#define ST_MAX_DIMS 8

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_OTHER } st_dtype;

typedef struct {
    char *name;
    char dtype_name[16];      // as written ("F32", "I64", ...)
    st_dtype dtype;           // ST_OTHER: a dtype petal cannot read as floats
    int ndim;
    long long shape[ST_MAX_DIMS];
    size_t nelem;
    size_t begin, end;        // byte range in the data section
} st_tensor;

typedef struct {
    char *path;
    st_tensor *t;             // in header order
    int n;
    const unsigned char *data;  // the data section (mapped)
    size_t data_size;
    void *map;
    size_t map_size;
} st_file;

// Opens and validates path: header length within the file, valid JSON, every
// entry with a string dtype, a shape of non-negative integers and data_offsets
// whose byte count matches dtype x shape and that lie inside the file. Errors
// are PETAL_EINPUT naming the file (and the tensor, when one entry is at fault).
int st_open(st_file *f, const char *path, petal_err *err);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
// Copies a tensor into out (nelem floats), converting F16 / BF16 / F64 to
// float32 (F64 rounds to nearest). The dtype must not be ST_OTHER.
void st_read_f32(float *out, const st_file *f, const st_tensor *t);
// IEEE half and bfloat16 bit patterns to float (exact).
float st_half_to_float(unsigned short h);
float st_bf16_to_float(unsigned short h);
#endif
