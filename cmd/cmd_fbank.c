// Front-end subcommands: `petal data fbank FILE` (inspect one clip's
// features) and `petal bench fbank` (fbank throughput, decode excluded).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/audio.h"
#include "core/common.h"
#include "core/fbank.h"

static const char data_usage[] =
    "usage: petal data fbank FILE [--mel-bins N] [--max-length T] [--raw] [--dump]\n"
    "  Decodes FILE (mono mix-down, resampled to 16 kHz) and computes AST's log-mel\n"
    "  fbank. Prints the shape and summary statistics.\n"
    "  --mel-bins N    mel bins (default 128)\n"
    "  --max-length T  frames after pad/cut (default 1024)\n"
    "  --raw           raw log-mel (frames, N) instead of padded, normalised (T, N)\n"
    "  --dump          write the matrix as text (one frame per line) instead\n";

int cmd_data_fbank(int argc, char **argv) {
    fbank_config cfg = fbank_config_ast();
    const char *path = NULL;
    int raw = 0, dump = 0;
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        const char *s = argv[a.i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(data_usage, stdout);
            return 0;
        }
        if (args_switch(&a, "--raw", &raw) || args_switch(&a, "--dump", &dump) ||
            args_int(&a, "--mel-bins", &cfg.mel_bins, 4, 4096) ||
            args_int(&a, "--max-length", &cfg.max_length, 1, 1 << 20))
            continue;
        if (s[0] == '-' && s[1]) {
            args_unknown(&a, "data fbank");
        } else if (!path) {
            path = s;
        } else {
            fprintf(stderr, "petal data fbank: one FILE only ('%s' is extra)\n", s);
            a.bad = 1;
        }
    }
    if (a.bad) return 2;
    if (!path) {
        fputs(data_usage, stderr);
        return 2;
    }

    petal_err err = {{0}};
    float *raw_wave = NULL, *wave = NULL;
    size_t nraw = 0, n = 0;
    int rate = 0;
    if (audio_read(&raw_wave, &nraw, &rate, path, &err)) {
        fprintf(stderr, "petal data fbank: %s\n", err.msg);
        return 2;
    }
    int st = audio_resample(&wave, &n, raw_wave, nraw, rate, AUDIO_RATE, &err);
    free(raw_wave);
    if (st) {
        fprintf(stderr, "petal data fbank: %s: %s\n", path, err.msg);
        return 2;
    }
    fbank_plan *plan = fbank_plan_create(&cfg, &err);
    if (!plan) {
        fprintf(stderr, "petal data fbank: %s\n", err.msg);
        free(wave);
        return 2;
    }
    const int F = cfg.mel_bins;
    int M = fbank_num_frames(plan, n), rows;
    float *x;
    if (raw) {
        x = petal_malloc(sizeof(float) * ((size_t)M * F + 1));
        fbank_compute(x, &rows, plan, wave, n);
    } else {
        rows = cfg.max_length;
        x = petal_malloc(sizeof(float) * (size_t)rows * F);
        fbank_features(x, NULL, plan, wave, n);
    }
    for (size_t i = 0; i < (size_t)rows * F; i++)
        if (!isfinite(x[i])) {  // finite but huge samples overflow the power spectrum
            fprintf(stderr, "petal data fbank: %s: features are not finite at frame %zu (samples "
                    "far outside [-1, 1]?)\n", path, i / (size_t)F);
            free(x);
            free(wave);
            fbank_plan_destroy(plan);
            return 2;
        }
    if (dump) {
        for (int t = 0; t < rows; t++)
            for (int m = 0; m < F; m++) printf("%.6g%c", x[(size_t)t * F + m], m + 1 < F ? ' ' : '\n');
    } else {
        double lo = INFINITY, hi = -INFINITY, sum = 0.0, sq = 0.0;
        size_t cells = (size_t)rows * F;
        for (size_t i = 0; i < cells; i++) {
            lo = fmin(lo, x[i]);
            hi = fmax(hi, x[i]);
            sum += x[i];
            sq += (double)x[i] * x[i];
        }
        double mean = cells ? sum / cells : 0.0, var = cells ? sq / cells - mean * mean : 0.0;
        printf("file %s\n", path);
        printf("audio rate=%d samples=%zu seconds=%.3f -> %d Hz samples=%zu\n", rate, nraw, (double)nraw / rate,
               AUDIO_RATE, n);
        printf("fbank frames=%d %s shape=(%d, %d)", M, raw ? "raw" : "features", rows, F);
        if (!raw) printf(" %s=%d", M > rows ? "cut" : "padded", M > rows ? M - rows : rows - M);
        printf("\n");
        if (cells)
            printf("stats min=%.4f max=%.4f mean=%.4f std=%.4f\n", lo, hi, mean, sqrt(var > 0.0 ? var : 0.0));
        else
            printf("stats none (clip shorter than one 25 ms frame)\n");
    }
    free(x);
    free(wave);
    fbank_plan_destroy(plan);
    return 0;
}

static const char bench_usage[] =
    "usage: petal bench fbank [--seconds S] [--clips N]\n"
    "  Times the raw log-mel fbank (fbank_compute, one thread) on an S-second\n"
    "  16 kHz waveform already in memory: N clips in 5 rounds, fastest round\n"
    "  reported (default S=1, N=200). Prints one line:\n"
    "  bench fbank seconds=<S> clips_per_s=<x>\n";

int cmd_bench_fbank(int argc, char **argv) {
    float seconds = 1.0f;
    int clips = 200;
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        if (!strcmp(argv[a.i], "--help") || !strcmp(argv[a.i], "-h")) {
            fputs(bench_usage, stdout);
            return 0;
        }
        if (args_float(&a, "--seconds", &seconds, 0.025f, 3600.0f) ||
            args_int(&a, "--clips", &clips, 1, 100000000))
            continue;
        args_unknown(&a, "bench fbank");
    }
    if (a.bad) return 2;
    fbank_config cfg = fbank_config_ast();
    petal_err err = {{0}};
    fbank_plan *plan = fbank_plan_create(&cfg, &err);
    if (!plan) {
        fprintf(stderr, "petal bench fbank: %s\n", err.msg);
        return 1;
    }
    // Speech-band noise plus a tone: content does not change the work done,
    // but keeps the log away from its floor as real clips do.
    size_t n = (size_t)(seconds * AUDIO_RATE);
    float *wave = petal_malloc(sizeof(float) * (n ? n : 1));
    petal_rng rng;
    petal_rng_seed(&rng, 1);
    for (size_t i = 0; i < n; i++)
        wave[i] = (float)(0.05 * petal_rng_normal(&rng) + 0.3 * sin(2 * M_PI * 220.0 * i / AUDIO_RATE));
    int M = fbank_num_frames(plan, n), got;
    float *out = petal_malloc(sizeof(float) * ((size_t)M * cfg.mel_bins + 1));
    for (int i = 0; i < 3; i++) fbank_compute(out, &got, plan, wave, n);  // warm caches
    // The machine is shared: time ROUNDS equal rounds and keep the fastest,
    // which is the least disturbed by other processes.
    enum { ROUNDS = 5 };
    int per = clips >= ROUNDS ? clips / ROUNDS : 1;
    double best = 0.0;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = petal_now();
        for (int i = 0; i < per; i++) fbank_compute(out, &got, plan, wave, n);
        double rate = per / (petal_now() - t0);
        best = rate > best ? rate : best;
    }
    printf("bench fbank seconds=%g clips_per_s=%.1f\n", seconds, best);
    free(out);
    free(wave);
    fbank_plan_destroy(plan);
    return 0;
}
