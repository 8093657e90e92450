// Audio input: real files written with libsndfile in a temp dir (WAV 16/24-bit,
// float, stereo; FLAC), read back through core/audio; mono mix-down, integer
// scaling, resampled lengths; broken files -> PETAL_EINPUT naming the file.
#include <math.h>
#include <sndfile.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/audio.h"
#include "core/common.h"
#include "tests/check.h"

static char dir[] = "/tmp/petal_test_audio_XXXXXX";

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

// Writes (frames, channels) interleaved x to path in format; 0 on success.
static int write_sound(const char *path, int format, int rate, int channels, const float *x, size_t frames) {
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = rate;
    info.channels = channels;
    info.format = format;
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f) {
        fprintf(stderr, "write %s: %s\n", path, sf_strerror(NULL));
        return 1;
    }
    sf_count_t w = sf_writef_float(f, x, (sf_count_t)frames);
    sf_close(f);
    return w == (sf_count_t)frames ? 0 : 1;
}

// Keeps the first `bytes` bytes of path.
static int truncate_file(const char *path, long bytes) { return truncate(path, bytes); }

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    PETAL_ASSERT(f != NULL);
    if (n) PETAL_ASSERT(fwrite(data, 1, n, f) == n);
    fclose(f);
}

// A 0.5 s test signal at rate: 440 Hz at 0.5 plus 1 kHz at 0.25.
static float *tone(size_t n, int rate) {
    float *x = petal_malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * sin(2 * M_PI * 440.0 * i / rate) + 0.25 * sin(2 * M_PI * 1000.0 * i / rate));
    return x;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

// Reads path expecting success at its own rate; checks length and values.
static void roundtrip(const char *name, int format, double tol) {
    char path[256];
    path_of(path, sizeof path, name);
    const int rate = 16000;
    size_t n = 8000;
    float *x = tone(n, rate);
    CHECK(write_sound(path, format, rate, 1, x, n) == 0, "write %s", name);
    float *y = NULL;
    size_t m = 0;
    int r = 0;
    petal_err err = {{0}};
    int st = audio_read(&y, &m, &r, path, &err);
    CHECK(st == PETAL_OK, "read %s: %s", name, err.msg);
    if (st == PETAL_OK) {
        double d = max_diff(x, y, n);
        CHECK(m == n && r == rate && d <= tol, "%s: n %zu rate %d max|d| %.2e (tol %.1e)", name, m, r, d, tol);
    }
    free(x);
    free(y);
}

static void check_formats(void) {
    // Tolerances are two quantisation steps: libsndfile's writer scales
    // floats by 2^(bits-1) - 1, its reader (and ours) divides by 2^(bits-1).
    roundtrip("pcm16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2.0 / 32768);
    roundtrip("pcm24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 2.0 / 8388608);
    roundtrip("float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0.0);
    roundtrip("pcm16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 2.0 / 32768);
    roundtrip("pcm24.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 2.0 / 8388608);

    // Integer PCM is scaled by 2^(bits-1), as soundfile/torchaudio load it:
    // 16384 -> 0.5, -32768 -> -1.
    char path[256];
    path_of(path, sizeof path, "scale.wav");
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    CHECK(f != NULL, "open %s for writing", path);
    if (f) {
        short s[3] = {16384, -32768, 32767};
        sf_write_short(f, s, 3);
        sf_close(f);
        float *y = NULL;
        size_t m = 0;
        int r;
        petal_err err;
        audio_read(&y, &m, &r, path, &err);
        CHECK(y && m == 3 && y[0] == 0.5f && y[1] == -1.0f && y[2] == 32767.0f / 32768.0f, "int16 scale");
        free(y);
    }
}

static void check_stereo(void) {
    // Left = tone, right = -0.5 * tone + 0.1: mono is their average.
    const int rate = 16000;
    size_t n = 4000;
    float *x = tone(n, rate), *lr = petal_malloc(sizeof(float) * 2 * n), *want = petal_malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        lr[2 * i] = x[i];
        lr[2 * i + 1] = -0.5f * x[i] + 0.1f;
        want[i] = (lr[2 * i] + lr[2 * i + 1]) / 2;
    }
    char path[256];
    path_of(path, sizeof path, "stereo.wav");
    CHECK(write_sound(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, rate, 2, lr, n) == 0, "write stereo");
    float *y = NULL;
    size_t m = 0;
    int r;
    petal_err err = {{0}};
    int st = audio_read(&y, &m, &r, path, &err);
    CHECK(st == PETAL_OK && m == n && max_diff(y, want, n) == 0.0, "stereo mixes down to the channel mean: %s",
          err.msg);
    free(y);
    // 3-channel FLAC too (24-bit).
    float *x3 = petal_malloc(sizeof(float) * 3 * n);
    for (size_t i = 0; i < n; i++) {
        x3[3 * i] = x[i];
        x3[3 * i + 1] = 0.25f;
        x3[3 * i + 2] = -x[i];
        want[i] = 0.25f / 3;
    }
    path_of(path, sizeof path, "three.flac");
    CHECK(write_sound(path, SF_FORMAT_FLAC | SF_FORMAT_PCM_24, rate, 3, x3, n) == 0, "write 3-channel flac");
    st = audio_read(&y, &m, &r, path, &err);
    CHECK(st == PETAL_OK && m == n && max_diff(y, want, n) < 1e-6, "3 channels average: %s", err.msg);
    free(y);
    free(x3);
    free(x);
    free(lr);
    free(want);
}

static void check_resampling(void) {
    const int rates[] = {8000, 22050, 44100, 48000};
    for (int k = 0; k < 4; k++) {
        int rate = rates[k];
        size_t n = (size_t)rate / 2 + 7;  // odd lengths too
        float *x = tone(n, rate);
        char path[256], name[64];
        snprintf(name, sizeof name, "r%d.wav", rate);
        path_of(path, sizeof path, name);
        CHECK(write_sound(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, rate, 1, x, n) == 0, "write %s", name);
        float *y = NULL;
        size_t m = 0;
        petal_err err = {{0}};
        int st = audio_load(&y, &m, path, AUDIO_RATE, &err);
        size_t want = (n * AUDIO_RATE + rate - 1) / rate;
        CHECK(st == PETAL_OK && m == want && m == audio_resampled_length(n, rate, AUDIO_RATE),
              "%s -> 16 kHz: %zu samples, want ceil(n * 16000 / rate) = %zu (%s)", name, m, want, err.msg);
        if (st == PETAL_OK) {
            // Band-limited content survives: compare with the tone evaluated at
            // 16 kHz, away from the edges where the filter sees the clip's end.
            float *ideal = tone(m, AUDIO_RATE);
            double d = max_diff(y + 200, ideal + 200, m - 400);
            CHECK(d < 2e-3, "%s: resampled tone max|d| %.2e", name, d);
            free(ideal);
        }
        free(y);
        free(x);
    }
    // Keeping the file's rate: target 0.
    char path[256];
    path_of(path, sizeof path, "r22050.wav");
    float *y = NULL;
    size_t m = 0;
    petal_err err;
    CHECK(audio_load(&y, &m, path, 0, &err) == PETAL_OK && m == 22050 / 2 + 7, "target 0 keeps the rate");
    free(y);
    CHECK(audio_resampled_length(16000, 44100, 16000) == 5805, "ceil rule");
    CHECK(audio_resample(&y, &m, NULL, 0, 0, 16000, &err) == PETAL_EINPUT, "rate 0 rejected");
}

// Every broken input: EINPUT, message names the file, nothing allocated.
static void expect_einput(const char *path, const char *what) {
    float *y = (float *)1;
    size_t m = 99;
    petal_err err = {{0}};
    int st = audio_load(&y, &m, path, AUDIO_RATE, &err);
    CHECK(st == PETAL_EINPUT, "%s: status %d, want PETAL_EINPUT", what, st);
    CHECK(strstr(err.msg, path) != NULL && !strchr(err.msg, '\n'), "%s: one-line message names the file: '%s'",
          what, err.msg);
    CHECK(y == NULL && m == 0, "%s: no output on failure", what);
    printf("  %-22s -> %s\n", what, err.msg);
}

static void check_errors(void) {
    char path[256];
    path_of(path, sizeof path, "missing.wav");
    expect_einput(path, "missing file");

    path_of(path, sizeof path, "empty.wav");
    write_bytes(path, "", 0);
    expect_einput(path, "empty file");

    path_of(path, sizeof path, "garbage.wav");
    unsigned char junk[4096];
    petal_rng r;
    petal_rng_seed(&r, 11);
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)petal_rng_below(&r, 256);
    write_bytes(path, junk, sizeof junk);
    expect_einput(path, "garbage bytes");

    // A RIFF/WAVE header with garbage after it.
    path_of(path, sizeof path, "badwav.wav");
    memcpy(junk, "RIFF\x24\x08\x00\x00WAVEfmt ", 16);
    write_bytes(path, junk, 200);
    expect_einput(path, "corrupt WAV header");

    // Zero samples: a valid header and no data.
    path_of(path, sizeof path, "zero.wav");
    CHECK(write_sound(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, NULL, 0) == 0, "write zero.wav");
    expect_einput(path, "zero-length audio");

    // Cut-off copies: WAV cut in the data, WAV cut in the header, FLAC cut
    // mid-stream (noise, so it does not compress to nothing).
    size_t n = 16000;
    float *x = petal_malloc(sizeof(float) * n);
    // libsndfile's FLAC writer drops a whole buffer that has a sample outside
    // [-1, 1], so keep the noise well inside.
    for (size_t i = 0; i < n; i++) x[i] = (float)fmax(-0.9, fmin(0.9, 0.2 * petal_rng_normal(&r)));
    path_of(path, sizeof path, "cut.wav");
    CHECK(write_sound(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x, n) == 0, "write cut.wav");
    CHECK(truncate_file(path, file_size(path) / 2) == 0, "truncate cut.wav");
    expect_einput(path, "WAV truncated in data");

    path_of(path, sizeof path, "cuthdr.wav");
    CHECK(write_sound(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x, n) == 0, "write cuthdr.wav");
    CHECK(truncate_file(path, 30) == 0, "truncate cuthdr.wav");
    expect_einput(path, "WAV truncated in header");

    path_of(path, sizeof path, "cut.flac");
    CHECK(write_sound(path, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 1, x, n) == 0, "write cut.flac");
    CHECK(truncate_file(path, file_size(path) / 2) == 0, "truncate cut.flac");
    expect_einput(path, "FLAC truncated");

    expect_einput(dir, "a directory");

    // A float WAV holding a NaN.
    x[1234] = NAN;
    path_of(path, sizeof path, "nan.wav");
    CHECK(write_sound(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, x, n) == 0, "write nan.wav");
    expect_einput(path, "NaN sample");
    x[1234] = 0.0f;

    // A FLAC whose STREAMINFO does not know its sample count (as an encoder
    // writing to a pipe leaves it) still decodes, to the end of the stream.
    // STREAMINFO starts at byte 8; its 36-bit total-samples field spans the
    // low 4 bits of byte 21 and bytes 22-25.
    path_of(path, sizeof path, "stream.flac");
    CHECK(write_sound(path, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 1, x, n) == 0, "write stream.flac");
    FILE *fl = fopen(path, "r+b");
    CHECK(fl != NULL, "open %s", path);
    if (fl) {
        unsigned char h[26];
        CHECK(fread(h, 1, 26, fl) == 26 && !memcmp(h, "fLaC", 4), "FLAC magic");
        h[21] &= 0xF0;
        memset(h + 22, 0, 4);
        fseek(fl, 0, SEEK_SET);
        fwrite(h, 1, 26, fl);
        fclose(fl);
        float *y = NULL;
        size_t m = 0;
        int rate = 0;
        petal_err err = {{0}};
        int st = audio_read(&y, &m, &rate, path, &err);
        CHECK(st == PETAL_OK && m == n && max_diff(x, y, n) <= 2.0 / 32768, "unknown-length FLAC: n %zu (%s)", m,
              err.msg);
        free(y);
    }
    free(x);
}

static void cleanup(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "test_audio: could not remove %s\n", dir);
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    check_formats();
    check_stereo();
    check_resampling();
    check_errors();
    cleanup();
    return check_done("test_audio");
}
