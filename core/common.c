// Status messages, checked allocation, RNG and clock for the training core.
#include "core/common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int petal_fail(petal_err *err, int status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void petal_note(const petal_notes *n, const char *fmt, ...) {
    if (!n || !n->fn) return;
    char line[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    n->fn(n->ctx, line);
}

void petal_oom(size_t bytes) {
    fprintf(stderr, "petal: out of memory allocating %zu bytes\n", bytes);
    abort();
}

void *petal_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) petal_oom(bytes);
    return p;
}

void *petal_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) petal_oom(n * size);
    return p;
}

float *petal_falloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) petal_oom(bytes);
    memset(p, 0, bytes);
    return p;
}

void *petal_grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) petal_oom(c * elem);
    *cap = c;
    return q;
}

int petal_write_full(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w, n -= (size_t)w;
    }
    return 0;
}

int petal_read_full(int fd, void *p, size_t n) {
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r, n -= (size_t)r;
    }
    return 0;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void petal_rng_seed(petal_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t petal_rng_u64(petal_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double petal_rng_uniform(petal_rng *r) {
    return (double)(petal_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t petal_rng_below(petal_rng *r, uint64_t n) {
    PETAL_ASSERT(n > 0);
    // Rejection sampling: no modulo bias.
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = petal_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double petal_rng_normal(petal_rng *r) {
    double u1 = petal_rng_uniform(r), u2 = petal_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void petal_rng_shuffle(petal_rng *r, int *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)petal_rng_below(r, (uint64_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

double petal_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int petal_creatable(const char *path, const char *what, petal_err *err) {
    char dir[4096];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s", path);
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash) snprintf(dir, sizeof dir, ".");  // relative: under the working folder
        else if (slash == dir) dir[1] = 0;
        else *slash = 0;
        if (stat(dir, &sb)) {
            if ((errno == ENOENT || errno == ENOTDIR) && strcmp(dir, ".") && strcmp(dir, "/")) continue;
            return petal_fail(err, PETAL_EINPUT, "%s: cannot create %s (%s: %s)", path, what, dir, strerror(errno));
        }
        if (!S_ISDIR(sb.st_mode))
            return petal_fail(err, PETAL_EINPUT, "%s: cannot create %s (%s is not a folder)", path, what, dir);
        if (access(dir, W_OK))
            return petal_fail(err, PETAL_EINPUT, "%s: cannot create %s (%s: %s)", path, what, dir, strerror(errno));
        return PETAL_OK;
    }
}

int petal_lock(const char *path, petal_err *err) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        petal_fail(err, PETAL_EFAIL, "%s: cannot create lock file (%s)", path, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        petal_fail(err, PETAL_EFAIL, "%s: flock failed (%s)", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

double petal_peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && kb < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &kb) != 1) kb = -1;
    if (f) fclose(f);
    struct rusage ru;
    if (kb < 0 && !getrusage(RUSAGE_SELF, &ru)) kb = ru.ru_maxrss;
    return kb < 0 ? 0.0 : (double)kb / 1024.0;
}
