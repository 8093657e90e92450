// ==== bf16 backbone (model.dtype bf16): frozen encoder GEMM weights in bf16 ====
// The query/key/value, output, fc1 and fc2 weights of every layer where they
// do not train are held as bf16 copies and their GEMMs (forward and input
// gradient) run with bf16 inputs and float32 accumulation (core/gemm.h).
// Everything that trains, the optimizer state, biases, LayerNorms, attention
// and the other element-wise work stay float32.
//
// Node-wide: when the float32 backbone is mapped from its node-wide image
// (core/backbone_image.c), the bf16 copy is an image beside it, `<image>.bf16`, built
// once under an flock and mapped read-only (MAP_SHARED) by every process; the
// float32 pages of the packed weights are then dropped from the process (they
// are clean file pages, read back from the image should anything touch them),
// so a process holds the frozen GEMM weights once, in bf16. Without an image
// (a private backbone) the bf16 copy is private and the float32 rows stay.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ast.h"
#include "core/gemm.h"

int bf16_force_unsupported;

// The weights that get a bf16 copy, in packing order: (layer, which).
typedef struct {
    float *w;                // the float32 row
    const uint16_t **w16;    // where its bf16 pointer goes
    size_t n;
} packed_row;

static int packed_rows(ast_model *m, packed_row *out) {
    int k = 0, C = m->cfg.C, MLP = m->cfg.MLP;
    for (int l = 0; l < m->cfg.L; l++) {
        ast_layer_tensors *w = &m->w.layer[l];
        const ast_layer_tensors *g = &m->g.layer[l];
        struct { float *w; const float *g; const uint16_t **w16; size_t n; } r[4] = {
            {w->qkv_w, g->qkv_w, &w->qkv_w16, (size_t)3 * C * C},
            {w->o_w, g->o_w, &w->o_w16, (size_t)C * C},
            {w->fc1_w, g->fc1_w, &w->fc1_w16, (size_t)MLP * C},
            {w->fc2_w, g->fc2_w, &w->fc2_w16, (size_t)C * MLP}};
        for (int i = 0; i < 4; i++)
            if (r[i].w && !r[i].g) {
                if (out) out[k] = (packed_row){r[i].w, r[i].w16, r[i].n};
                k++;
            }
    }
    return k;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

// The node-wide float32 image that `addr` is mapped from (its path), or 0.
static int mapped_image(char *path, size_t n, const void *addr) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[PATH_MAX + 256];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        int off = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &a, &b, &off) < 2 || !off) continue;
        if ((unsigned long)addr < a || (unsigned long)addr >= b) continue;
        char *p = line + off;
        p[strcspn(p, "\n")] = 0;
        size_t len = strlen(p);
        found = len > 4 && !strcmp(p + len - 4, ".img") && len < n;
        if (found) memcpy(path, p, len + 1);
    }
    fclose(f);
    return found;
}

// Drops the float32 pages of packed rows that are clean file pages of the
// image (never those of private memory: those would read back as zeros).
static void drop_f32_pages(const packed_row *r, int k, const char *img) {
    long pg = sysconf(_SC_PAGESIZE);
    char p[PATH_MAX + 64];
    for (int i = 0; i < k; i++) {
        uintptr_t a = ((uintptr_t)r[i].w + pg - 1) / pg * pg;
        uintptr_t b = ((uintptr_t)(r[i].w + r[i].n)) / pg * pg;
        // Whole pages only, and only where every page is mapped from the image.
        for (uintptr_t x = a; x < b; x += (uintptr_t)pg << 8) {
            uintptr_t y = x + ((uintptr_t)pg << 8) < b ? x + ((uintptr_t)pg << 8) : b;
            if (mapped_image(p, sizeof p, (void *)x) && !strcmp(p, img) &&
                mapped_image(p, sizeof p, (void *)(y - 1)) && !strcmp(p, img))
                madvise((void *)x, y - x, MADV_DONTNEED);
        }
    }
}

static void pack(uint16_t *dst, const packed_row *r, int k) {
    size_t o = 0;
    for (int i = 0; i < k; i++) {
        bf16_from_f32(dst + o, r[i].w, r[i].n);
        o += r[i].n;
    }
}

// Removes bf16 images (and their locks and dead builds' temporaries) whose
// float32 image is gone: core/backbone_image.c prunes those, not these.
static void prune_bf16(const char *img) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", img);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[PATH_MAX + 300], base[PATH_MAX + 300];
    while ((e = readdir(d))) {
        const char *x = strstr(e->d_name, ".img.bf16");
        if (!x) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        const char *tmp = strstr(x, ".tmp.");
        if (tmp) {
            long pid = atol(tmp + 5);
            if (pid > 0 && kill((pid_t)pid, 0) && errno == ESRCH) unlink(path);
            continue;
        }
        snprintf(base, sizeof base, "%s/%.*s", dir, (int)(x - e->d_name + 4), e->d_name);
        if (access(base, F_OK) && errno == ENOENT) unlink(path);
    }
    closedir(d);
}

// Maps (building it first if needed) img.bf16 holding the packed rows;
// returns the mapping or NULL with why filled (the caller packs privately).
static uint16_t *share_bf16(const char *img, const packed_row *r, int k, size_t n16,
                            petal_err *why) {
    struct stat sb;
    if (stat(img, &sb)) {
        petal_fail(why, PETAL_EFAIL, "%s: %s", img, strerror(errno));
        return NULL;
    }
    uint64_t layout = 0xcbf29ce484222325ULL;
    for (int i = 0; i < k; i++) layout = fnv1a(layout, &r[i].n, sizeof r[i].n);
    long pg = sysconf(_SC_PAGESIZE);
    char *hdr = petal_calloc(1, (size_t)pg), *got = petal_malloc((size_t)pg);
    // The float32 image it came from, exactly (a rebuilt image has a new inode).
    snprintf(hdr, (size_t)pg,
             "petal bf16 image 1\nsource %s\ndev %llu ino %llu size %lld mtime %lld.%09ld\n"
             "rows %d values %zu layout %016llx\n",
             img, (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino,
             (long long)sb.st_size, (long long)sb.st_mtim.tv_sec, (long)sb.st_mtim.tv_nsec, k, n16,
             (unsigned long long)layout);
    char path[PATH_MAX + 64], lock[PATH_MAX + 80], tmp[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s.bf16", img);
    snprintf(lock, sizeof lock, "%s.lock", path);
    size_t bytes = n16 * sizeof(uint16_t);
    uint16_t *map = NULL;
    int lfd = -1;
    for (int attempt = 0; attempt < 2 && !map; attempt++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat fb;
        if (fd >= 0 && !fstat(fd, &fb) && (size_t)fb.st_size == (size_t)pg + bytes &&
            fb.st_uid == geteuid() && pread(fd, got, (size_t)pg, 0) == pg &&
            !memcmp(got, hdr, (size_t)pg)) {
            void *p = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, pg);
            if (p != MAP_FAILED) map = p;
        }
        if (fd >= 0) close(fd);
        if (map || attempt) break;
        // Build it: one process at a time, the others find it done.
        if ((lfd = petal_lock(lock, why)) < 0) break;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && !fstat(fd, &fb) && (size_t)fb.st_size == (size_t)pg + bytes &&
            pread(fd, got, (size_t)pg, 0) == pg && !memcmp(got, hdr, (size_t)pg)) {
            close(fd);
            continue;  // built while we waited
        }
        if (fd >= 0) close(fd);
        prune_bf16(img);
        uint16_t *buf = petal_malloc(bytes);
        pack(buf, r, k);
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int ok = fd >= 0 && !petal_write_full(fd, hdr, (size_t)pg) && !petal_write_full(fd, buf, bytes) &&
                 !fsync(fd);
        if (fd >= 0) ok = !close(fd) && ok;
        ok = ok && !rename(tmp, path);
        free(buf);
        if (!ok) {
            petal_fail(why, PETAL_EFAIL, "%s: cannot write (%s)", tmp, strerror(errno));
            unlink(tmp);
            break;
        }
    }
    if (!map && !why->msg[0]) petal_fail(why, PETAL_EFAIL, "%s: cannot map", path);
    if (lfd >= 0) close(lfd);
    free(hdr), free(got);
    return map;
}

int ast_model_use_bf16(ast_model *m, const char *share_dir, char *warn, size_t nwarn,
                       petal_err *err) {
    const char *isa;
    if (warn && nwarn) warn[0] = 0;
    if (!gemm_bf16_supported(&isa) || bf16_force_unsupported)
        return petal_fail(err, PETAL_EINPUT,
                          "model.dtype bf16 needs a CPU with AVX512-BF16 or AMX-BF16; this one "
                          "has %s (use model.dtype fp32)",
                          bf16_force_unsupported ? "them disabled" : isa);
    if (gemm_engine() != GEMM_ONEDNN)
        return petal_fail(err, PETAL_EINPUT,
                          "model.dtype bf16 runs on the oneDNN GEMM engine, not PETAL_GEMM=%s",
                          gemm_engine_name());
    if (m->w16) return PETAL_OK;
    int k = packed_rows(m, NULL);
    if (!k) return PETAL_OK;  // every GEMM weight trains (full fine-tuning): nothing to hold
    packed_row *r = petal_malloc(sizeof *r * (size_t)k);
    packed_rows(m, r);
    size_t n16 = 0;
    for (int i = 0; i < k; i++) n16 += r[i].n;
    char img[PATH_MAX];
    petal_err why = {0};
    uint16_t *w16 = NULL;
    // The image the rows are mapped from: probe a whole page inside a row (a
    // row's first page may be private, shared with a row that trains: BitFit).
    int found = 0;
    long pg = sysconf(_SC_PAGESIZE);
    for (int i = 0; share_dir && m->params.nshared && i < k && !found; i++) {
        uintptr_t a = ((uintptr_t)r[i].w + pg - 1) / pg * pg;
        if (a + (uintptr_t)pg <= (uintptr_t)(r[i].w + r[i].n))
            found = mapped_image(img, sizeof img, (void *)a);
    }
    if (found) {
        w16 = share_bf16(img, r, k, n16, &why);
        if (w16) {
            m->w16_mapped = 1;
            drop_f32_pages(r, k, img);
        } else if (warn) {
            snprintf(warn, nwarn, "%s; holding a private bf16 copy", why.msg);
        }
    }
    if (!w16) {
        w16 = petal_malloc(n16 * sizeof *w16);
        pack(w16, r, k);
    }
    m->w16 = w16;
    m->n16 = n16;
    size_t o = 0;
    for (int i = 0; i < k; i++) {
        *r[i].w16 = w16 + o;
        o += r[i].n;
    }
    free(r);
    return PETAL_OK;
}

void ast_model_free_bf16(ast_model *m) {
    if (!m->w16) return;
    if (m->w16_mapped) munmap(m->w16, m->n16 * sizeof *m->w16);
    else free(m->w16);
    m->w16 = NULL;
}
