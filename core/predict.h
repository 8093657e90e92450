// Inference on audio files: one file -> the model's logits, and the top-k
// classes. Works with any ast_model (an imported classifier, or later a
// trained trial's model).
#ifndef PETAL_PREDICT_H
#define PETAL_PREDICT_H
#include "core/ast.h"
#include "core/fbank.h"

// Logits (m->cfg.K) of one audio file: audio_load (mono, 16 kHz),
// fbank_features (the plan's max_length and mel_bins must equal m's frames
// and F), ast_forward with batch 1 in eval mode (m->training is restored).
// Audio failures are PETAL_EINPUT naming the file.
int predict_file(float *logits, ast_model *m, fbank_plan *plan, const char *path, petal_err *err);

// idx[0..k) = indices of the k largest logits, largest first (ties: the lower
// index first); k <= K.
void predict_topk(int *idx, int k, const float *logits, int K);
#endif
