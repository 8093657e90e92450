// SpecAugment for training inputs: frequency and time masks on one (T, F)
// feature matrix, as torchaudio's FrequencyMasking / TimeMasking draw them
// (width uniform in [0, max), start uniform over the positions it fits).
// Masked cells are set to 0 in the normalised features -- the PETL reference
// applies the masks to the output of HF's extractor, i.e. after
// normalisation. (The original AST loader masks before normalising, which
// would leave (0 - mean) / (2 std) = 0.467 in masked cells instead.)
// The caller decides when to apply it (training batches only).
#ifndef PETAL_SPECAUG_H
#define PETAL_SPECAUG_H
#include "core/common.h"

typedef struct {
    int freq_mask_max;  // widths drawn from [0, freq_mask_max) mel bins (24)
    int time_mask_max;  // widths drawn from [0, time_mask_max) frames (80)
    int freq_masks;     // number of frequency masks per call (1)
    int time_masks;     // number of time masks per call (1)
} specaug_config;

// AST's ESC-50 / US8K setting: one 24-bin frequency mask, one 80-frame time mask.
specaug_config specaug_config_ast(void);

// Masks x (T, F) in place. All randomness comes from rng, so the same rng
// state gives the same masks. Draw order: frequency masks, then time masks,
// each mask two draws (width, then start).
void specaug_apply(float *x, petal_rng *rng, const specaug_config *cfg, int T, int F);
#endif
