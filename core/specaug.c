// ---- SpecAugment: frequency and time masking ------------------------------
#include "core/specaug.h"

specaug_config specaug_config_ast(void) {
    specaug_config c = {.freq_mask_max = 24, .time_mask_max = 80, .freq_masks = 1, .time_masks = 1};
    return c;
}

// One mask along an axis of length size: width = floor(U * max) (so < max),
// start = floor(U * (size - width)), as torchaudio's mask_along_axis (which
// draws the start from [0, size - width) with the unrounded width).
static void draw_mask(int *start, int *width, petal_rng *rng, int max, int size) {
    int w = max > 0 ? (int)(petal_rng_uniform(rng) * max) : 0;
    if (w > size) w = size;
    int s = (int)(petal_rng_uniform(rng) * (size - w));
    *start = s;
    *width = w;
}

void specaug_apply(float *x, petal_rng *rng, const specaug_config *cfg, int T, int F) {
    PETAL_ASSERT(T >= 1 && F >= 1 && cfg->freq_mask_max >= 0 && cfg->time_mask_max >= 0);
    for (int k = 0; k < cfg->freq_masks; k++) {
        int s, w;
        draw_mask(&s, &w, rng, cfg->freq_mask_max, F);
        for (int t = 0; t < T; t++)
            for (int f = s; f < s + w; f++) x[(size_t)t * F + f] = 0.0f;
    }
    for (int k = 0; k < cfg->time_masks; k++) {
        int s, w;
        draw_mask(&s, &w, rng, cfg->time_mask_max, T);
        for (int t = s; t < s + w; t++)
            for (int f = 0; f < F; f++) x[(size_t)t * F + f] = 0.0f;
    }
}
