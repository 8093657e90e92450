// ---- log-mel filterbank (torchaudio.compliance.kaldi.fbank, AST settings) --
// Per frame: DC removal, pre-emphasis, Hann window, zero pad to the FFT size,
// real-to-complex FFT (FFTW single precision), power spectrum, sparse mel
// triangles, log. The window, the mel weights and the FFT plan are made once
// per plan object; fbank_compute only reads them and writes the plan's own
// scratch buffers, so one plan per thread gives thread safety.
//
// Frames go through in batches of FB: one FFTW call transforms FB frames and
// writes the spectra bin-major, (bins, FB), so the power spectrum, the mel
// sums and the log all run as FB-wide vector operations with no horizontal
// reductions (a mel triangle spans only 1-20 FFT bins, too short to
// vectorise within one frame).
#include "core/fbank.h"

#include <fftw3.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

// Frames per batch: 16 floats fill one AVX-512 register (two AVX2 ones).
// FFT plans exist for 1, 2, 4, 8 and 16 frames so a clip's last, partial
// batch transforms at most twice the frames it needs.
#define FB 16
#define NPLANS 5

struct fbank_plan {
    fbank_config cfg;
    int window;          // W samples per frame (400 at 16 kHz, 25 ms)
    int shift;           // samples between frame starts (160)
    int nfft;            // FFT size, next power of two >= W (512)
    float *win;          // (W) symmetric Hann window
    // Sparse mel bank: triangle m has weights mel_w[mel_off[m] + j] for FFT
    // bins mel_start[m] + j, j < mel_len[m]. Only bins [0, nfft/2) take part:
    // torchaudio pads the Nyquist column of its bank with zeros.
    int *mel_start, *mel_len, *mel_off;  // (F) each
    float *mel_w;                        // (sum of mel_len)
    float *frames;                       // (FB, nfft) FFT input; columns [W, nfft) stay zero
    fftwf_complex *spec;                 // (nfft/2 + 1, FB) FFT output, bin-major
    float *power;                        // (nfft/2, FB) power spectrum
    float *mel;                          // (F, FB) mel energies, then their logs
    fftwf_plan fft[NPLANS];              // fft[i]: 2^i real FFTs, frames -> spec
};

// FFTW's planner (plan creation and destruction) shares global state and is
// not thread-safe; fftwf_execute on distinct plans is.
static pthread_mutex_t fftw_planner_lock = PTHREAD_MUTEX_INITIALIZER;

fbank_config fbank_config_ast(void) {
    fbank_config c = {
        .sample_rate = 16000,
        .mel_bins = 128,
        .max_length = 1024,
        .frame_length_ms = 25.0f,
        .frame_shift_ms = 10.0f,
        .low_freq = 20.0f,
        .high_freq = 0.0f,
        .preemph = 0.97f,
        .norm_mean = -4.2677393f,
        .norm_std = 4.5689974f,
    };
    return c;
}

// HTK mel scale as Kaldi writes it (natural log, 1127).
static double mel_of_hz(double hz) { return 1127.0 * log(1.0 + hz / 700.0); }

void fbank_plan_destroy(fbank_plan *p) {
    if (!p) return;
    pthread_mutex_lock(&fftw_planner_lock);
    for (int i = 0; i < NPLANS; i++)
        if (p->fft[i]) fftwf_destroy_plan(p->fft[i]);
    pthread_mutex_unlock(&fftw_planner_lock);
    fftwf_free(p->frames);
    fftwf_free(p->spec);
    fftwf_free(p->power);
    fftwf_free(p->mel);
    free(p->win);
    free(p->mel_start);
    free(p->mel_len);
    free(p->mel_off);
    free(p->mel_w);
    free(p);
}

const fbank_config *fbank_plan_config(const fbank_plan *p) { return &p->cfg; }

fbank_plan *fbank_plan_create(const fbank_config *cfg, petal_err *err) {
    const fbank_config c = *cfg;
    // Frame sizes as torchaudio derives them: int(rate * ms * 0.001).
    double wlen = c.sample_rate * (double)c.frame_length_ms * 0.001;
    double wshift = c.sample_rate * (double)c.frame_shift_ms * 0.001;
    int W = wlen >= 2.0 && wlen <= (1 << 20) ? (int)wlen : 0;
    int S = wshift >= 1.0 && wshift <= (1 << 24) ? (int)wshift : 0;
    double nyquist = 0.5 * c.sample_rate;
    double lo = c.low_freq, hi = c.high_freq <= 0.0f ? c.high_freq + nyquist : c.high_freq;
    if (c.sample_rate <= 0 || W < 2 || S < 1) {
        petal_fail(err, PETAL_EINPUT, "fbank: bad framing (rate %d Hz, frame %g ms, shift %g ms)", c.sample_rate,
                   c.frame_length_ms, c.frame_shift_ms);
        return NULL;
    }
    if (c.mel_bins <= 3 || c.max_length < 1) {
        petal_fail(err, PETAL_EINPUT, "fbank: mel_bins must be > 3 and max_length >= 1 (got %d, %d)", c.mel_bins,
                   c.max_length);
        return NULL;
    }
    if (!(lo >= 0.0 && lo < nyquist && hi > 0.0 && hi <= nyquist && lo < hi)) {
        petal_fail(err, PETAL_EINPUT, "fbank: bad mel range low %g high %g Hz (Nyquist %g)", lo, hi, nyquist);
        return NULL;
    }
    if (!(c.preemph >= 0.0f && c.preemph <= 1.0f) || !(c.norm_std > 0.0f)) {
        petal_fail(err, PETAL_EINPUT, "fbank: preemph must be in [0, 1] and norm_std > 0");
        return NULL;
    }

    fbank_plan *p = petal_calloc(1, sizeof *p);
    p->cfg = c;
    p->window = W;
    p->shift = S;
    p->nfft = 1;
    while (p->nfft < W) p->nfft *= 2;
    int half = p->nfft / 2, F = c.mel_bins;

    // torch.hann_window(W, periodic=False): 0.5 - 0.5 cos(2 pi i / (W - 1)).
    p->win = petal_malloc(sizeof(float) * W);
    for (int i = 0; i < W; i++) p->win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / (W - 1)));

    // Mel triangles evenly spaced on the mel scale: F + 2 edges from low to
    // high; weight = max(0, min(up slope, down slope)) at each FFT bin's mel.
    double mlo = mel_of_hz(lo), mhi = mel_of_hz(hi), delta = (mhi - mlo) / (F + 1);
    double bin_hz = (double)c.sample_rate / p->nfft;
    p->mel_start = petal_malloc(sizeof(int) * F);
    p->mel_len = petal_malloc(sizeof(int) * F);
    p->mel_off = petal_malloc(sizeof(int) * F);
    double *bin_mel = petal_malloc(sizeof(double) * (size_t)half);  // (half) mel of each FFT bin
    for (int k = 0; k < half; k++) bin_mel[k] = mel_of_hz(bin_hz * k);
    float *dense = petal_malloc(sizeof(float) * (size_t)F * half);  // (F, half)
    size_t total = 0;
    for (int m = 0; m < F; m++) {
        double left = mlo + m * delta, center = left + delta, right = left + 2.0 * delta;
        int first = -1, last = -2;
        for (int k = 0; k < half; k++) {
            double up = (bin_mel[k] - left) / (center - left), down = (right - bin_mel[k]) / (right - center);
            double w = up < down ? up : down;
            float wf = w > 0.0 ? (float)w : 0.0f;
            dense[(size_t)m * half + k] = wf;
            if (wf > 0.0f) {
                if (first < 0) first = k;
                last = k;
            }
        }
        // A triangle narrower than the FFT bin spacing may catch no bin; its
        // energy is 0 and its log the floor, as in torchaudio.
        p->mel_start[m] = first < 0 ? 0 : first;
        p->mel_len[m] = first < 0 ? 0 : last - first + 1;
        p->mel_off[m] = (int)total;
        total += (size_t)p->mel_len[m];
    }
    p->mel_w = petal_malloc(sizeof(float) * (total ? total : 1));
    for (int m = 0; m < F; m++)
        memcpy(p->mel_w + p->mel_off[m], dense + (size_t)m * half + p->mel_start[m],
               sizeof(float) * (size_t)p->mel_len[m]);
    free(dense);
    free(bin_mel);

    p->frames = fftwf_alloc_real((size_t)FB * p->nfft);
    p->spec = fftwf_alloc_complex(((size_t)half + 1) * FB);
    p->power = fftwf_alloc_real((size_t)half * FB);
    p->mel = fftwf_alloc_real((size_t)F * FB);
    if (!p->frames || !p->spec || !p->power || !p->mel) {
        fbank_plan_destroy(p);
        petal_fail(err, PETAL_EFAIL, "fbank: out of memory for FFT buffers (%d points)", half * 2);
        return NULL;
    }
    // FFTW_ESTIMATE: the plan is a function of the size alone, so the same
    // audio gives the same bits in every run. FFTW_MEASURE picked its algorithm
    // by timing, so the features moved by up to 2.4e-4 from run to run with the
    // machine's load, and with them every trial's result (the demo's backbone
    // read 27.3% or 42.4% on the same corpus). Input: contiguous frames of
    // nfft; output element k of frame f lands at spec[k * FB + f].
    // r2c keeps its input, so the zero columns survive every execute.
    int nfft = p->nfft;
    pthread_mutex_lock(&fftw_planner_lock);
    int planned = 1;
    for (int i = 0; i < NPLANS; i++) {
        p->fft[i] = fftwf_plan_many_dft_r2c(1, &nfft, 1 << i, p->frames, NULL, 1, nfft, p->spec, NULL, FB, 1,
                                            FFTW_ESTIMATE);
        planned &= p->fft[i] != NULL;
    }
    pthread_mutex_unlock(&fftw_planner_lock);
    if (!planned) {
        fbank_plan_destroy(p);
        petal_fail(err, PETAL_EFAIL, "fbank: FFTW could not plan %d-point real FFTs", nfft);
        return NULL;
    }
    // The frames start zeroed (their padding columns stay zero across executes).
    memset(p->frames, 0, sizeof(float) * FB * (size_t)nfft);
    return p;
}

int fbank_num_frames(const fbank_plan *p, size_t n) {
    if (n < (size_t)p->window) return 0;
    size_t m = 1 + (n - (size_t)p->window) / (size_t)p->shift;
    PETAL_ASSERT(m <= (size_t)INT32_MAX);
    return (int)m;
}

// Natural log of a positive normal finite float, written so that a loop of them
// vectorises (glibc's logf is a scalar call and was 40% of the fbank time).
// x = 2^e * m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s) with
// s = (m - 1) / (m + 1), |s| < 0.172, summed to s^9: the truncation
// (< 1e-9 relative) is far below float rounding; results are within a few
// ulp of logf.
static inline float log_positive(float x) {
    const uint32_t sqrt_half = 0x3f3504f3;  // bits of 0.70710677f
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u -= sqrt_half;
    int32_t e = (int32_t)u >> 23;  // arithmetic shift: floor of the exponent
    u = (u & 0x007fffff) + sqrt_half;
    float m;
    memcpy(&m, &u, sizeof m);
    float f = m - 1.0f, s = f / (m + 1.0f), s2 = s * s;
    float poly = 1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9))));
    // ln 2 split so e * ln2_hi is exact for |e| < 2^8.
    const float ln2_hi = 0.693145751953125f, ln2_lo = 1.4286068203e-06f;
    return (float)e * ln2_hi + ((float)e * ln2_lo + 2.0f * s * poly);
}

// Windowed, pre-emphasised frame x (W samples) -> f (W), DC removed first.
static void prepare_frame(float *restrict f, const fbank_plan *p, const float *restrict x) {
    const int W = p->window;
    const float a = p->cfg.preemph;
    const float *restrict win = p->win;
    // Per-frame DC removal (remove_dc_offset), summed in double so long
    // frames with a large offset keep full float accuracy.
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < W; i++) sum += x[i];
    const float mean = (float)(sum / W);
    // Pre-emphasis on the DC-free frame, y[j] = d[j] - a d[j-1] with d[-1] =
    // d[0] (torchaudio pads by replication), then the window.
    f[0] = win[0] * ((x[0] - mean) - a * (x[0] - mean));
#pragma omp simd
    for (int j = 1; j < W; j++) f[j] = win[j] * ((x[j] - mean) - a * (x[j - 1] - mean));
}

// count <= FB consecutive frames starting at wave -> out (count, F) log-mel.
static void batch_logmel(float *out, fbank_plan *p, const float *wave, int count) {
    const int half = p->nfft / 2, F = p->cfg.mel_bins;
    for (int b = 0; b < count; b++) prepare_frame(p->frames + (size_t)b * p->nfft, p, wave + (size_t)b * p->shift);
    // Smallest plan covering count frames; extra frames it transforms are
    // stale and their rows are not stored.
    int i = 0;
    while ((1 << i) < count) i++;
    fftwf_execute(p->fft[i]);

    const float *restrict s = (const float *)p->spec;  // (half + 1, FB, 2) re, im
    float *restrict pw = p->power;                     // (half, FB)
#pragma omp simd
    for (int i = 0; i < half * FB; i++) pw[i] = s[2 * i] * s[2 * i] + s[2 * i + 1] * s[2 * i + 1];

    float *restrict e = p->mel;  // (F, FB)
    for (int m = 0; m < F; m++) {
        float acc[FB] = {0};
        const float *restrict w = p->mel_w + p->mel_off[m];
        const float *restrict q = pw + (size_t)p->mel_start[m] * FB;
        for (int j = 0; j < p->mel_len[m]; j++)
#pragma omp simd
            for (int b = 0; b < FB; b++) acc[b] += w[j] * q[j * FB + b];
        // Kaldi's floor: log of at least float epsilon (silence -> -15.94).
        // Two loops on purpose: with the clamp inside the log's loop GCC
        // branches to a constant-folded log(eps) and stops vectorising.
        for (int b = 0; b < FB; b++) acc[b] = acc[b] < FLT_EPSILON ? FLT_EPSILON : acc[b];
        // + acc * 0 is 0 for finite energies and NaN for NaN or inf ones, so a
        // non-finite waveform gives NaN features (as torchaudio would), not a
        // plausible number from log_positive's bit tricks.
        for (int b = 0; b < FB; b++) e[m * FB + b] = log_positive(acc[b]) + acc[b] * 0.0f;
    }
    for (int b = 0; b < count; b++)
        for (int m = 0; m < F; m++) out[(size_t)b * F + m] = e[m * FB + b];
}

// Frames [0, count) of wave -> out (count, F).
static void frames_logmel(float *out, fbank_plan *p, const float *wave, int count) {
    const int F = p->cfg.mel_bins;
    for (int t = 0; t < count; t += FB)
        batch_logmel(out + (size_t)t * F, p, wave + (size_t)t * p->shift, count - t < FB ? count - t : FB);
}

int fbank_compute(float *out, int *nframes, fbank_plan *p, const float *wave, size_t n) {
    int M = fbank_num_frames(p, n);
    frames_logmel(out, p, wave, M);
    *nframes = M;
    return PETAL_OK;
}

void fbank_pad_normalise(float *x, const fbank_config *cfg, int nframes, int T, int F) {
    PETAL_ASSERT(nframes >= 0 && T >= 1 && F >= 1);
    int valid = nframes < T ? nframes : T;
    // HF's extractor pads the raw log-mel with zeros and normalises after, so
    // padding rows hold (0 - mean) / (2 std), not 0.
    const float mean = cfg->norm_mean, inv = 1.0f / (2.0f * cfg->norm_std);
    size_t nv = (size_t)valid * F, all = (size_t)T * F;
#pragma omp simd
    for (size_t i = 0; i < nv; i++) x[i] = (x[i] - mean) * inv;
    const float padv = (0.0f - mean) * inv;
    for (size_t i = nv; i < all; i++) x[i] = padv;
}

int fbank_features(float *out, int *nframes, fbank_plan *p, const float *wave, size_t n) {
    const int T = p->cfg.max_length, F = p->cfg.mel_bins;
    int M = fbank_num_frames(p, n);
    int keep = M < T ? M : T;  // frames past T would be cut: skip them
    frames_logmel(out, p, wave, keep);
    fbank_pad_normalise(out, &p->cfg, keep, T, F);
    if (nframes) *nframes = M;
    return PETAL_OK;
}
