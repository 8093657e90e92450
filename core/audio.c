// ---- audio input: libsndfile decode, mono mix-down, libsamplerate ----------
#include "core/audio.h"

#include <limits.h>
#include <math.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdio.h>
#include <string.h>

// libsndfile opens a WAV/AIFF whose sample data is shorter than its header
// declares (a cut-off copy) without an error; it only writes
// "data : <declared> (should be <present>)" into the file's log. Reading the
// log is the one public way to see this. A declared size of 0 or >= 2^32-16
// is a streaming writer's placeholder, not truncation.
static int header_says_truncated(SNDFILE *f) {
    char log[8192];
    sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
    for (char *line = log; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        char tag[16];
        long long declared, present;
        if (sscanf(line, "%15s : %lld (should be %lld)", tag, &declared, &present) != 3) continue;
        if (strcmp(tag, "data") && strcmp(tag, "SSND")) continue;
        if (declared > present && declared > 0 && declared < 0xFFFFFFF0LL) return 1;
    }
    return 0;
}

// Decodes the opened f (described by info) into a mono waveform; closes f.
// path names the source in messages.
static int decode(float **out, size_t *n, int *rate, SNDFILE *f, SF_INFO info, const char *path,
                  petal_err *err) {
    int status = PETAL_OK;
    float *chunk = NULL, *mono = NULL;
    int ch = info.channels;
    if (ch < 1 || info.samplerate < 1) {
        status = petal_fail(err, PETAL_EINPUT, "%s: bad header (%d channels, %d Hz)", path, ch,
                            info.samplerate);
        goto done;
    }
    // frames == SF_COUNT_MAX: a streamed file that does not know its length
    // (e.g. FLAC written to a pipe); decode to the end then.
    int known = info.frames != SF_COUNT_MAX;
    if (info.frames <= 0) {
        status = petal_fail(err, PETAL_EINPUT, "%s: no audio samples", path);
        goto done;
    }
    if (header_says_truncated(f)) {
        status = petal_fail(err, PETAL_EINPUT, "%s: truncated (header declares more samples than the file holds)",
                            path);
        goto done;
    }
    if (known && (unsigned long long)info.frames > SIZE_MAX / sizeof(float)) {
        status = petal_fail(err, PETAL_EINPUT, "%s: too long (%lld frames)", path, (long long)info.frames);
        goto done;
    }
    // Decode in chunks so a long multichannel file never needs an interleaved
    // copy of itself; chunk is (CH_FRAMES, ch) interleaved.
    enum { CH_FRAMES = 4096 };
    // The buffer grows with what is decoded, not with what the header
    // promises: a damaged header can claim terabytes.
    size_t want = known ? (size_t)info.frames : SIZE_MAX;
    size_t cap = want < 16 * CH_FRAMES ? want : 16 * CH_FRAMES;
    if (ch > 1024) {
        status = petal_fail(err, PETAL_EINPUT, "%s: bad header (%d channels)", path, ch);
        goto done;
    }
    chunk = petal_malloc(sizeof(float) * CH_FRAMES * (size_t)ch);
    mono = petal_malloc(sizeof(float) * cap);
    size_t got = 0;
    while (got < want) {
        if (got + CH_FRAMES > cap && cap < want) {
            cap = cap * 2 < want ? cap * 2 : want;
            float *grown = realloc(mono, sizeof(float) * cap);
            if (!grown) {
                status = petal_fail(err, PETAL_EFAIL, "%s: out of memory decoding %zu samples", path, cap);
                goto done;
            }
            mono = grown;
        }
        sf_count_t k = want - got < CH_FRAMES ? (sf_count_t)(want - got) : CH_FRAMES;
        sf_count_t r = sf_readf_float(f, chunk, k);
        if (r <= 0) break;
        // Mean over channels, as a mono downmix of torch tensors does.
        int finite = 1;
        for (sf_count_t i = 0; i < r; i++) {
            float s = 0.0f;
            for (int c = 0; c < ch; c++) s += chunk[i * ch + c];
            mono[got + i] = ch == 1 ? s : s / (float)ch;
            finite &= isfinite(mono[got + i]) != 0;
        }
        // Float formats can carry NaN/inf, which would poison every feature
        // and gradient downstream: a corrupt file, reported as one.
        if (!finite) {
            size_t bad = got;
            while (isfinite(mono[bad])) bad++;
            status = petal_fail(err, PETAL_EINPUT, "%s: NaN or infinite sample at %zu (%.3f s)", path, bad,
                                (double)bad / info.samplerate);
            goto done;
        }
        got += (size_t)r;
    }
    if (sf_error(f) != SF_ERR_NO_ERROR) {
        status = petal_fail(err, PETAL_EINPUT, "%s: decode error: %s", path, sf_strerror(f));
        goto done;
    }
    if (known && got < want) {
        // FLAC and friends: STREAMINFO promises `want` samples, the decoder
        // lost sync before them.
        status = petal_fail(err, PETAL_EINPUT, "%s: truncated or corrupt (decoded %zu of %zu samples)", path,
                            got, want);
        goto done;
    }
    if (got == 0) {
        status = petal_fail(err, PETAL_EINPUT, "%s: no audio samples", path);
        goto done;
    }
    *out = mono;
    *n = got;
    *rate = info.samplerate;
    mono = NULL;
done:
    free(chunk);
    free(mono);
    sf_close(f);
    return status;
}

int audio_read(float **out, size_t *n, int *rate, const char *path, petal_err *err) {
    *out = NULL;
    *n = 0;
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f) return petal_fail(err, PETAL_EINPUT, "%s: cannot read audio: %s", path, sf_strerror(NULL));
    return decode(out, n, rate, f, info, path, err);
}

// ---- decoding from memory (libsndfile's virtual I/O over a byte range) ----------
typedef struct {
    const unsigned char *data;
    sf_count_t size, pos;
} membuf;

static sf_count_t mem_length(void *u) { return ((membuf *)u)->size; }
static sf_count_t mem_tell(void *u) { return ((membuf *)u)->pos; }
static sf_count_t mem_seek(sf_count_t off, int whence, void *u) {
    membuf *m = u;
    sf_count_t at = whence == SEEK_SET ? off : whence == SEEK_CUR ? m->pos + off : m->size + off;
    if (at < 0 || at > m->size) return -1;
    return m->pos = at;
}
static sf_count_t mem_read(void *dst, sf_count_t count, void *u) {
    membuf *m = u;
    sf_count_t k = m->size - m->pos < count ? m->size - m->pos : count;
    if (k <= 0) return 0;
    memcpy(dst, m->data + m->pos, (size_t)k);
    m->pos += k;
    return k;
}
static sf_count_t mem_write(const void *src, sf_count_t count, void *u) {
    (void)src, (void)count, (void)u;
    return 0;
}

int audio_read_mem(float **out, size_t *n, int *rate, const void *data, size_t size,
                   const char *name, petal_err *err) {
    *out = NULL;
    *n = 0;
    membuf m = {data, (sf_count_t)size, 0};
    SF_VIRTUAL_IO io = {mem_length, mem_seek, mem_read, mem_write, mem_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *f = sf_open_virtual(&io, SFM_READ, &info, &m);
    if (!f) return petal_fail(err, PETAL_EINPUT, "%s: cannot read audio: %s", name, sf_strerror(NULL));
    return decode(out, n, rate, f, info, name, err);
}

size_t audio_resampled_length(size_t n, int in_rate, int out_rate) {
    PETAL_ASSERT(in_rate > 0 && out_rate > 0);
    unsigned long long num = (unsigned long long)n * (unsigned long long)out_rate;
    return (size_t)((num + (unsigned long long)in_rate - 1) / (unsigned long long)in_rate);
}

int audio_resample(float **out, size_t *nout, const float *in, size_t n, int in_rate, int out_rate,
                   petal_err *err) {
    *out = NULL;
    *nout = 0;
    if (in_rate <= 0 || out_rate <= 0)
        return petal_fail(err, PETAL_EINPUT, "resample: bad rates %d -> %d Hz", in_rate, out_rate);
    size_t m = audio_resampled_length(n, in_rate, out_rate);
    if (in_rate == out_rate) {
        *out = petal_malloc(sizeof(float) * (n ? n : 1));
        if (n) memcpy(*out, in, sizeof(float) * n);
        *nout = n;
        return PETAL_OK;
    }
    double ratio = (double)out_rate / in_rate;
    if (!src_is_valid_ratio(ratio))
        return petal_fail(err, PETAL_EINPUT, "resample: ratio %d -> %d Hz outside libsamplerate's range",
                          in_rate, out_rate);
    // libsamplerate stops about one output sample short of ceil(n * ratio)
    // (it emits only samples whose time lies inside the input). Appending a
    // few zeros -- what torchaudio assumes past the end -- lets it reach m.
    size_t pad = (size_t)(2.0 / ratio) + 4;
    if (n + pad > (size_t)LONG_MAX) return petal_fail(err, PETAL_EINPUT, "resample: %zu samples is too long", n);
    float *padded = petal_calloc(n + pad, sizeof(float));
    if (n) memcpy(padded, in, sizeof(float) * n);
    size_t cap = m + (size_t)(pad * ratio) + 8;
    float *res = petal_malloc(sizeof(float) * cap);
    SRC_DATA d;
    memset(&d, 0, sizeof d);
    d.data_in = padded;
    d.input_frames = (long)(n + pad);
    d.data_out = res;
    d.output_frames = (long)cap;
    d.src_ratio = ratio;
    d.end_of_input = 1;
    int e = src_simple(&d, SRC_SINC_BEST_QUALITY, 1);
    free(padded);
    if (e) {
        free(res);
        return petal_fail(err, PETAL_EFAIL, "resample %d -> %d Hz: %s", in_rate, out_rate, src_strerror(e));
    }
    // A bug if the zero tail did not buy enough output.
    PETAL_ASSERT((size_t)d.output_frames_gen >= m);
    *out = res;
    *nout = m;
    return PETAL_OK;
}

int audio_load(float **out, size_t *n, const char *path, int target_rate, petal_err *err) {
    float *raw = NULL;
    size_t nraw = 0;
    int rate = 0;
    *out = NULL;
    *n = 0;
    int st = audio_read(&raw, &nraw, &rate, path, err);
    if (st) return st;
    if (target_rate <= 0 || target_rate == rate) {
        *out = raw;
        *n = nraw;
        return PETAL_OK;
    }
    st = audio_resample(out, n, raw, nraw, rate, target_rate, err);
    free(raw);
    if (st) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        return petal_fail(err, st, "%s: %s", path, msg);
    }
    return PETAL_OK;
}
