// Feature cache: the features of a dataset's audio files computed once into
// one HDF5 file and shared by every trial and rank that asks for them.
//
// Keys. A row is valid for a request when
//   - the file's params string equals the request's (the caller puts every
//     preprocessing parameter and a version of its extractor in it), and the
//     (frames, bins) shape matches: otherwise the whole file is rebuilt;
//   - the row's audio path (made absolute against the working directory, not
//     resolved through symlinks) matches, and the file's size and mtime (ns)
//     equal the ones recorded when the row was computed. Size + mtime, not a
//     content hash: checking 100k files costs one stat each instead of reading
//     every byte; an edit that keeps both size and mtime goes unnoticed.
//
// Concurrency. Requests first read the cache without locking; if it holds a
// valid row for every path they use it. Otherwise they take an exclusive
// flock on "<file>.lock" and look again (another process may have just built
// it); the one that still finds it stale builds a new file "<file>.tmp.<pid>"
// (copying still-valid rows, extracting the rest) and rename()s it over
// <file>, so readers only ever see complete files. The lock file stays in
// place. Rows of the old file that the request does not name are kept if
// their audio file is unchanged, so one cache can serve several subsets.
//
// File layout (HDF5): attribute "params" (string); datasets "feats" float32
// (R, frames, bins), "paths" uint8 (NUL-separated absolute paths, R of them),
// "sizes" int64 (R), "mtimes" int64 (R, ns since the epoch).
#ifndef PETAL_FEATCACHE_H
#define PETAL_FEATCACHE_H
#include "core/common.h"

// Computes the (frames, bins) row-major features of one audio file into out.
// Returns PETAL_OK or a status with err naming the file.
typedef int (*feat_extract_fn)(float *out, const char *path, void *ctx, petal_err *err);

typedef struct {
    int computed;  // rows this call extracted
    int reused;    // rows of the request served from a valid cache row
    int built;     // 1 if this call wrote (renamed in) a new cache file
} featcache_stats;

typedef struct featcache featcache;

// Makes sure file holds valid features of paths[0..n) under params, building
// or updating it if needed (see above), and opens it for reading. extract is
// called with ctx, one path at a time, for rows that must be computed.
// stats may be NULL. Errors: a path that cannot be stat'ed, an extractor
// failure, an HDF5 or file-system error; all name the file.
int featcache_open(featcache **fc, featcache_stats *stats, const char *file, const char *params,
                   const char *const *paths, int n, int frames, int bins, feat_extract_fn extract,
                   void *ctx, petal_err *err);

// Features of paths[first .. first+count) in request order into out
// (count, frames, bins).
int featcache_read(float *out, featcache *fc, int first, int count, petal_err *err);

void featcache_close(featcache *fc);
#endif
