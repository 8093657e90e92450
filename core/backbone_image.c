// ==== One backbone per node: images of the frozen rows, mapped by every process ====
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
int backbone_share(int *shared, ast_model *m, const char *path, const char *dir,
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
            if ((st = backbone_load_rows(m, path, 1, 0, file_frames, err))) goto out;
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

