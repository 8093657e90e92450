// Audio input: decode any file libsndfile reads (WAV, FLAC, ... at any bit
// depth), mix down to mono, resample with libsamplerate. Output waveforms are
// float in [-1, 1] (integer formats divided by 2^(bits-1)), the scale that
// soundfile/torchaudio load and the AST normalisation constants assume.
#ifndef PETAL_AUDIO_H
#define PETAL_AUDIO_H
#include <stddef.h>

#include "core/common.h"

// The rate the AST front end works at.
#define AUDIO_RATE 16000

// Decodes path into a mono waveform at its own rate. *out is malloc'ed
// (*n floats; caller frees), *rate gets the file's sample rate.
// Missing, empty, truncated, corrupt or unsupported files and files with no
// samples -> PETAL_EINPUT with a one-line message naming the file.
int audio_read(float **out, size_t *n, int *rate, const char *path, petal_err *err);

// The same from a file's bytes in memory (data[0..size)); `name` stands for
// the file in messages.
int audio_read_mem(float **out, size_t *n, int *rate, const void *data, size_t size,
                   const char *name, petal_err *err);

// Number of samples audio_resample produces: ceil(n * out_rate / in_rate),
// the same rule as torchaudio.functional.resample, so frame counts match.
size_t audio_resampled_length(size_t n, int in_rate, int out_rate);

// Resamples in (n samples at in_rate) to out_rate with libsamplerate's
// SRC_SINC_BEST_QUALITY. *out is malloc'ed with audio_resampled_length()
// samples. Equal rates copy. Bad rates -> PETAL_EINPUT.
int audio_resample(float **out, size_t *nout, const float *in, size_t n, int in_rate, int out_rate,
                   petal_err *err);

// audio_read then audio_resample to target_rate (0 keeps the file's rate).
// Errors name the file.
int audio_load(float **out, size_t *n, const char *path, int target_rate, petal_err *err);
#endif
