// ==== .safetensors reader: validated header, memory-mapped data ===============
#include "core/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies it as host floats"
#endif

// The format's own limit on the header size.
#define ST_HEADER_MAX (100u << 20)

static const struct {
    const char *name;
    int bytes;
    st_dtype kind;
} dtypes[] = {
    {"F32", 4, ST_F32},   {"F16", 2, ST_F16},    {"BF16", 2, ST_BF16},   {"F64", 8, ST_F64},
    {"BOOL", 1, ST_OTHER}, {"U8", 1, ST_OTHER},  {"I8", 1, ST_OTHER},    {"F8_E5M2", 1, ST_OTHER},
    {"F8_E4M3", 1, ST_OTHER}, {"I16", 2, ST_OTHER}, {"U16", 2, ST_OTHER}, {"I32", 4, ST_OTHER},
    {"U32", 4, ST_OTHER}, {"I64", 8, ST_OTHER},  {"U64", 8, ST_OTHER},
};

void st_close(st_file *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    free(f->path);
    if (f->map) munmap(f->map, f->map_size);
    memset(f, 0, sizeof *f);
}

// One header entry -> t, checked against the data section's size.
static int parse_entry(st_tensor *t, const char *name, const json_value *e, const st_file *f,
                       petal_err *err) {
    const char *p = f->path;
    if (e->type != JSON_OBJECT)
        return petal_fail(err, PETAL_EINPUT, "%s: header entry for tensor %s is a %s, not an object",
                          p, name, json_type_name(e->type));
    const json_value *dt = json_get(e, "dtype"), *sh = json_get(e, "shape"),
                     *off = json_get(e, "data_offsets");
    if (!dt || dt->type != JSON_STRING)
        return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: missing or non-string \"dtype\"", p, name);
    if (!sh || sh->type != JSON_ARRAY)
        return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: missing or non-array \"shape\"", p, name);
    if (!off || off->type != JSON_ARRAY || off->len != 2)
        return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: \"data_offsets\" must be [begin, end]",
                          p, name);
    int bytes = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dt->str, dtypes[i].name)) {
            bytes = dtypes[i].bytes;
            t->dtype = dtypes[i].kind;
        }
    if (!bytes)
        return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: unknown dtype \"%.32s\"", p, name, dt->str);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->str);
    if (sh->len > ST_MAX_DIMS)
        return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: %zu dimensions (at most %d)", p, name,
                          sh->len, ST_MAX_DIMS);
    t->ndim = (int)sh->len;
    t->nelem = 1;
    for (int i = 0; i < t->ndim; i++) {
        long long d;
        if (!json_int(&sh->items[i], &d, 0, 1LL << 40))
            return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: shape entries must be integers in "
                              "[0, 2^40]", p, name);
        t->shape[i] = d;
        if (d && t->nelem > SIZE_MAX / 8 / (size_t)d)
            return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: shape too large", p, name);
        t->nelem *= (size_t)d;
    }
    long long b, en;
    if (!json_int(&off->items[0], &b, 0, 1LL << 53) || !json_int(&off->items[1], &en, b, 1LL << 53))
        return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: data_offsets must be integers with "
                          "0 <= begin <= end", p, name);
    t->begin = (size_t)b;
    t->end = (size_t)en;
    if (t->end - t->begin != t->nelem * (size_t)bytes)
        return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: %s with %zu elements needs %zu bytes, "
                          "data_offsets [%zu, %zu] give %zu", p, name, t->dtype_name, t->nelem,
                          t->nelem * (size_t)bytes, t->begin, t->end, t->end - t->begin);
    if (t->end > f->data_size)
        return petal_fail(err, PETAL_EINPUT, "%s: tensor %s: data [%zu, %zu) runs past the end of "
                          "the file's %zu data bytes (truncated file?)", p, name, t->begin, t->end,
                          f->data_size);
    return PETAL_OK;
}

int st_open(st_file *f, const char *path, petal_err *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return petal_fail(err, PETAL_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return petal_fail(err, PETAL_EINPUT, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return petal_fail(err, PETAL_EINPUT, "%s: %zu bytes, too short for a safetensors header "
                          "(truncated file?)", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return petal_fail(err, PETAL_EINPUT, "%s: cannot map: %s", path, strerror(errno));
    f->map = map;
    f->map_size = size;
    f->path = petal_malloc(strlen(path) + 1);
    strcpy(f->path, path);
    const unsigned char *m = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | m[i];
    if (hlen > ST_HEADER_MAX || hlen > size - 8) {
        int st = petal_fail(err, PETAL_EINPUT, "%s: header length %llu does not fit in the file's "
                            "%zu bytes (truncated, or not a safetensors file)", path,
                            (unsigned long long)hlen, size);
        st_close(f);
        return st;
    }
    f->data = m + 8 + hlen;
    f->data_size = size - 8 - (size_t)hlen;

    char source[4200];
    snprintf(source, sizeof source, "%s: header", path);
    json_value *h;
    int st = json_parse(&h, (const char *)m + 8, (size_t)hlen, source, err);
    if (st) {
        st_close(f);
        return st;
    }
    if (h->type != JSON_OBJECT) {
        st = petal_fail(err, PETAL_EINPUT, "%s: header is a JSON %s, not an object", path,
                        json_type_name(h->type));
    } else {
        f->t = petal_calloc(h->len ? h->len : 1, sizeof *f->t);
        for (size_t i = 0; i < h->len && !st; i++) {
            if (!strcmp(h->keys[i], "__metadata__")) continue;
            st_tensor *t = &f->t[f->n];
            t->name = petal_malloc(strlen(h->keys[i]) + 1);
            strcpy(t->name, h->keys[i]);
            f->n++;
            st = parse_entry(t, h->keys[i], &h->items[i], f, err);
        }
    }
    json_free(h);
    if (st) st_close(f);
    return st;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

float st_half_to_float(unsigned short h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | mant << 13;  // inf / NaN (payload kept)
    } else if (e) {
        bits = sign | (e + 112) << 23 | mant << 13;  // rebias 15 -> 127
    } else if (mant) {  // subnormal: normalise the mantissa
        int shift = 0;
        while (!(mant & 0x400)) {
            mant <<= 1;
            shift++;
        }
        bits = sign | (uint32_t)(113 - shift) << 23 | (mant & 0x3ff) << 13;
    } else {
        bits = sign;
    }
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

float st_bf16_to_float(unsigned short h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

void st_read_f32(float *out, const st_file *f, const st_tensor *t) {
    const unsigned char *src = f->data + t->begin;
    switch (t->dtype) {
    case ST_F32: memcpy(out, src, t->nelem * sizeof *out); break;
    case ST_F16:
    case ST_BF16:
        for (size_t i = 0; i < t->nelem; i++) {
            unsigned short h = (unsigned short)(src[2 * i] | src[2 * i + 1] << 8);
            out[i] = t->dtype == ST_F16 ? st_half_to_float(h) : st_bf16_to_float(h);
        }
        break;
    case ST_F64:
        for (size_t i = 0; i < t->nelem; i++) {
            double d;
            memcpy(&d, src + 8 * i, sizeof d);
            out[i] = (float)d;
        }
        break;
    default: PETAL_ASSERT(!"st_read_f32 on a non-float dtype");
    }
}
