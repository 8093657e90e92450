// Shared basics of the training core: status codes, the two kinds of error
// (bugs abort with file:line; runtime failures return a status and a message),
// checked allocation, and the seeded random number generator.
#ifndef PETAL_COMMON_H
#define PETAL_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

// Status codes double as process exit codes. PETAL_STOPPED: a trial stopped
// on request (SIGTERM / SIGUSR1) after writing its checkpoint; a scheduler
// should requeue it (75 = EX_TEMPFAIL of sysexits.h).
enum { PETAL_OK = 0, PETAL_EFAIL = 1, PETAL_EINPUT = 2, PETAL_STOPPED = 75 };

// A broken invariant: print where and abort (never for bad user input).
#define PETAL_ASSERT(cond)                                                      \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: internal error: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                     \
            abort();                                                            \
        }                                                                       \
    } while (0)

// Error buffer filled by a failing call; callers print it.
typedef struct {
    char msg[1024];
} petal_err;

// Formats msg into err (if non-NULL) and returns status.
int petal_fail(petal_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Progress and warning lines from the core reach the caller through this hook
// (the core never prints): fn gets one line without its newline. A NULL
// hook, or a NULL fn, drops them.
typedef struct {
    void (*fn)(void *ctx, const char *line);
    void *ctx;
} petal_notes;
void petal_note(const petal_notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// malloc/calloc that abort with a message when memory is exhausted.
// (returns_nonnull: GCC's format checks under sanitizer flags otherwise
// assume a NULL result and stop -Werror builds.)
void *petal_malloc(size_t bytes) __attribute__((returns_nonnull));
void *petal_calloc(size_t n, size_t size) __attribute__((returns_nonnull));
// 64-byte aligned, zeroed; free with free().
float *petal_falloc(size_t n) __attribute__((returns_nonnull));
// Reports an allocation of `bytes` that failed and aborts (out of memory is not recoverable).
void petal_oom(size_t bytes) __attribute__((noreturn));
// Whether path, which does not exist, can be created: its nearest existing
// parent is a folder this process may write (as root too: a read-only mount is
// found). PETAL_OK, or PETAL_EINPUT "PATH: cannot create WHAT (PARENT: why)".
int petal_creatable(const char *path, const char *what, petal_err *err);
// Opens (creating) the lock file `path` and takes an exclusive flock on it;
// returns the descriptor (close it to release) or -1 with err filled.
int petal_lock(const char *path, petal_err *err);
// Grows array p (capacity *cap elements of elem bytes, doubling from 64) to
// hold need elements; returns the possibly moved array. Aborts when out of memory.
void *petal_grow(void *p, size_t *cap, size_t need, size_t elem);
// Writes all n bytes of p to fd (retrying short writes and EINTR); 0, or -1 with errno.
int petal_write_full(int fd, const void *p, size_t n);
// Reads exactly n bytes into p (retrying short reads and EINTR); 0, or -1 at
// end of file or on an error.
int petal_read_full(int fd, void *p, size_t n);

// ---- random numbers ---------------------------------------------------------
// xoshiro256** seeded through splitmix64: small state that checkpoints can
// store, same stream on every machine.
typedef struct {
    uint64_t s[4];
} petal_rng;

void petal_rng_seed(petal_rng *r, uint64_t seed);
uint64_t petal_rng_u64(petal_rng *r);
// Uniform in [0, 1).
double petal_rng_uniform(petal_rng *r);
// Uniform integer in [0, n).
uint64_t petal_rng_below(petal_rng *r, uint64_t n);
// Standard normal (Box-Muller, no cached second value so state is all in s).
double petal_rng_normal(petal_rng *r);
// Fisher-Yates shuffle of idx[0..n).
void petal_rng_shuffle(petal_rng *r, int *idx, int n);

// Wall-clock seconds (monotonic).
double petal_now(void);
// The process's peak resident memory in MiB (VmHWM: since it started, or since
// "5" was last written to /proc/self/clear_refs, as a sweep's runner does
// before each trial); getrusage's maximum where /proc says nothing.
double petal_peak_rss_mib(void);
#endif
