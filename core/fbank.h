// Log-mel filterbank features as AST's front end computes them:
// torchaudio.compliance.kaldi.fbank(htk_compat=True, use_energy=False,
// window_type='hanning', dither=0, 25 ms / 10 ms, snip_edges=True, 512-point
// FFT, pre-emphasis 0.97, per-frame DC removal, power spectrum, HTK mel scale
// from 20 Hz to Nyquist, log floored at FLT_EPSILON), then pad/cut to T frames
// and normalise with AudioSet's mean and std: (x - mean) / (2 * std).
//
// Shapes: a waveform is (n) floats in [-1, 1] at cfg.sample_rate; features are
// (frames, F) row-major, F = cfg.mel_bins. Raw frame count for n samples:
// 0 if n < window, else 1 + (n - window) / shift (window 400, shift 160 at 16 kHz).
#ifndef PETAL_FBANK_H
#define PETAL_FBANK_H
#include <stddef.h>

#include "core/common.h"

typedef struct {
    int sample_rate;        // Hz of the waveforms fed in (16000)
    int mel_bins;           // F (128)
    int max_length;         // T, frames after pad/cut in fbank_features (1024)
    float frame_length_ms;  // 25: window = rate * 25 ms samples, FFT = next power of 2
    float frame_shift_ms;   // 10
    float low_freq;         // 20 Hz, lower edge of the first mel triangle
    float high_freq;        // 0: <= 0 means offset from Nyquist
    float preemph;          // 0.97
    float norm_mean;        // -4.2677393 (AudioSet fbank mean)
    float norm_std;         // 4.5689974; features divide by 2 * std
} fbank_config;

// The AST / HF ASTFeatureExtractor settings (mel_bins 128, max_length 1024).
fbank_config fbank_config_ast(void);

// Precomputed window, sparse mel weights and an FFTW plan with its buffers.
// One plan serves one thread at a time: give each thread its own plan.
typedef struct fbank_plan fbank_plan;

// Builds a plan (FFTW planning is serialised by a mutex inside, so threads may
// call this concurrently). NULL with err filled on a bad config.
fbank_plan *fbank_plan_create(const fbank_config *cfg, petal_err *err);
void fbank_plan_destroy(fbank_plan *p);
const fbank_config *fbank_plan_config(const fbank_plan *p);

// Raw frame count for a waveform of n samples (snip_edges rule above).
int fbank_num_frames(const fbank_plan *p, size_t n);

// Raw log-mel filterbank (torchaudio's fbank output): out is
// (fbank_num_frames(p, n), F); *nframes gets that count (0 for clips shorter
// than one window). Returns PETAL_OK. A NaN or inf sample makes the frames
// that contain it NaN.
int fbank_compute(float *out, int *nframes, fbank_plan *p, const float *wave, size_t n);

// Model input: fbank_compute, then cut to T frames or pad with zero frames,
// then normalise every cell (padding too, as HF's extractor does).
// out is (T, F) with T = cfg.max_length; *nframes gets the raw frame count
// before pad/cut (may be NULL). Only the first T frames are computed.
int fbank_features(float *out, int *nframes, fbank_plan *p, const float *wave, size_t n);

// In place (T, F) normalisation and zero padding, for callers that hold raw
// frames: x has nframes valid rows of T; rows past nframes become padding.
void fbank_pad_normalise(float *x, const fbank_config *cfg, int nframes, int T, int F);
#endif
