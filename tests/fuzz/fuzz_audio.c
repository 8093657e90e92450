// libFuzzer target: the audio path from memory, as a corpus file reaches the
// feature extractor: decode (any libsndfile format), mono mix-down, resample
// to 16 kHz, fbank features of 64 frames x 32 bins.
#include "core/audio.h"
#include "core/fbank.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static fbank_plan *plan;
    if (!plan) {
        fbank_config cfg = fbank_config_ast();
        cfg.mel_bins = 32;
        cfg.max_length = 64;
        petal_err err;
        plan = fbank_plan_create(&cfg, &err);
        if (!plan) abort();
    }
    float *wave = NULL, *w16 = NULL;
    size_t n = 0, n16 = 0;
    int rate = 0;
    petal_err err;
    if (audio_read_mem(&wave, &n, &rate, data, size, "fuzz.wav", &err) == PETAL_OK) {
        // keep executions fast: at most 2 s of audio goes on to resampling
        size_t keep = n < (size_t)rate * 2 ? n : (size_t)rate * 2;
        if (rate >= 1000 && rate <= 192000 &&
            audio_resample(&w16, &n16, wave, keep, rate, AUDIO_RATE, &err) == PETAL_OK) {
            float out[64 * 32];
            fbank_features(out, NULL, plan, w16, n16);
        }
    }
    free(w16);
    free(wave);
    return 0;
}
