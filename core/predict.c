// ==== Inference: audio file -> fbank -> forward -> logits, top-k ==============
#include "core/predict.h"

#include <string.h>

#include "core/audio.h"

int predict_file(float *logits, ast_model *m, fbank_plan *plan, const char *path, petal_err *err) {
    const fbank_config *fc = fbank_plan_config(plan);
    const ast_config *c = &m->cfg;
    if (fc->max_length != c->frames || fc->mel_bins != c->F || fc->sample_rate != AUDIO_RATE)
        return petal_fail(err, PETAL_EINPUT,
                          "fbank plan (%d frames x %d bins at %d Hz) does not match the model "
                          "(%d frames x %d bins at %d Hz)",
                          fc->max_length, fc->mel_bins, fc->sample_rate, c->frames, c->F,
                          AUDIO_RATE);
    float *wave = NULL;
    size_t n = 0;
    int st = audio_load(&wave, &n, path, AUDIO_RATE, err);
    if (st) return st;
    float *x = petal_falloc((size_t)c->frames * c->F);  // (frames, F)
    fbank_features(x, NULL, plan, wave, n);
    free(wave);
    int training = m->training;
    m->training = 0;
    ast_forward(m, x, NULL, 1, NULL);
    m->training = training;
    memcpy(logits, m->a.logits, (size_t)c->K * sizeof *logits);
    free(x);
    return PETAL_OK;
}

typedef struct {
    float v;
    int i;
} scored;

// Descending by value, NaN last, ties by ascending index (a total order).
static int scored_cmp(const void *pa, const void *pb) {
    const scored *a = pa, *b = pb;
    int an = a->v != a->v, bn = b->v != b->v;
    if (an != bn) return an - bn;
    if (!an && a->v != b->v) return a->v > b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

void predict_topk(int *idx, int k, const float *logits, int K) {
    PETAL_ASSERT(k >= 0 && k <= K);
    scored *s = petal_malloc((size_t)(K ? K : 1) * sizeof *s);
    for (int i = 0; i < K; i++) s[i] = (scored){logits[i], i};
    qsort(s, (size_t)K, sizeof *s, scored_cmp);
    for (int r = 0; r < k; r++) idx[r] = s[r].i;
    free(s);
}
