// libFuzzer target: a .safetensors file (header length, JSON header, every
// entry's dtype, shape and data offsets), opened from an in-memory file and,
// when it opens, every tensor read as float32 as the HF import does.
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/safetensors.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    int fd = memfd_create("fuzz.safetensors", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    st_file f;
    petal_err err;
    if (st_open(&f, path, &err) == PETAL_OK) {
        for (int i = 0; i < f.n; i++) {
            const st_tensor *t = &f.t[i];
            if (t->dtype == ST_OTHER || t->nelem > (1u << 22)) continue;
            float *out = malloc(sizeof(float) * (t->nelem ? t->nelem : 1));
            st_read_f32(out, &f, t);
            free(out);
            if (st_find(&f, t->name) == NULL) abort();
        }
        st_close(&f);
    }
    close(fd);
    return 0;
}
