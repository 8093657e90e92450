// Backbone files: a pretrained (or randomly initialised) AST, optionally with
// its classifier, in one HDF5 file that training and `petal predict` start
// from; and the import of HuggingFace AST checkpoints into that form.
//
// File layout (README "Backbones"):
//   /            attributes C L NH MLP F frames patch fstride tstride (int),
//                ln_eps (double); with a classifier also K, head_ln (int) and
//                pool (string, the pooling the classifier was trained with)
//   /params/<n>  float32, every backbone row of the parameter table under its
//                HF ASTModel name (no `audio_spectrogram_transformer.` prefix);
//                with a classifier also classifier.dense.{weight,bias} and,
//                when head_ln, classifier.layernorm.{weight,bias}
//   /labels      optional, K strings (class names, e.g. config.json id2label)
#ifndef PETAL_BACKBONE_H
#define PETAL_BACKBONE_H
#include "core/ast.h"

// Writes m's backbone rows (and, with_head, its classifier rows with K,
// head_ln and pool) to path atomically: path.tmp, then rename. labels: NULL
// or K strings (only written with the head). A method's own rows are not
// written: fold LoRA in first (ast_lora_merge) to export it as a backbone.
int backbone_save(const char *path, const ast_model *m, int with_head, char *const *labels,
                  petal_err *err);

// Reads the architecture of a backbone file into cfg. Without a classifier
// cfg->K = 0 and head_ln = 0 (callers set K before ast_model_init); pool is
// the file's (all without a classifier). If labels is non-NULL, *labels gets
// K malloc'ed strings (free with backbone_labels_free) or NULL when the file
// stores none.
int backbone_read_config(ast_config *cfg, char ***labels, const char *path, petal_err *err);
void backbone_labels_free(char **labels, int K);

// Loads path's backbone rows (and, with_head, its classifier rows) into m,
// which was built by ast_model_init from a config with the file's
// architecture (C, L, NH, MLP, F, patch, strides, ln_eps; with_head also K and
// head_ln). The method's own rows keep their values. m's frames may differ
// from the file's: the position embeddings are then re-gridded along time
// (backbone_regrid_pos). Errors name the file and the attribute or tensor.
// With share_dir non-NULL the frozen backbone rows are mapped from a node-wide
// image of the file kept in share_dir (one copy in memory however many
// processes train on it; m->params.nshared says how many bytes); if the image
// cannot be made or mapped, the load is private and *warn (may be NULL) says
// why; warn->msg is empty otherwise.
// Call after ast_init_weights(m, seed, 1): the rows' pages are then never
// written, so they cost no private memory.
int backbone_load(ast_model *m, const char *path, int with_head, const char *share_dir,
                  petal_err *warn, petal_err *err);

// Position embeddings (1, 2 + f_dim*t_old, C) -> (1, 2 + f_dim*t_new, C):
// the CLS and distillation rows are copied; the patch rows, viewed as a
// (C, f_dim, t_old) grid, are resized along time exactly as
// torch.nn.functional.interpolate(mode='bilinear', align_corners=False) to
// (f_dim, t_new) (the frequency axis is unchanged, so it is a linear
// interpolation along time with half-pixel centres, clamped at the edges).
void backbone_regrid_pos(float *dst, int t_new, const float *src, int t_old, int f_dim, int C);

// Imports a HuggingFace AST checkpoint directory: DIR/config.json (sizes,
// layer_norm_eps, id2label) and DIR/model.safetensors (ASTModel names, or
// ASTForAudioClassification's `audio_spectrogram_transformer.`-prefixed ones
// plus classifier.layernorm / classifier.dense). Builds m with ast_model_init
// (method linear, batch 1; frames = `frames`, or config max_length when
// frames <= 0, position embeddings re-gridded when they differ) and fills
// every backbone row, and the classifier rows when the checkpoint has them
// (*has_head = 1, head_ln = 1, pool cls_dist, K = id2label's size, *labels =
// id2label's names or NULL). Every tensor's name, shape and dtype is checked
// (F32; F16, BF16 and F64 converted), extra tensors are errors.
// pytorch_model.bin (pickle) is not read. Errors are PETAL_EINPUT naming the
// file and the field (with line and column) or tensor.
int backbone_import_hf(ast_model *m, int *has_head, char ***labels, const char *dir, int frames,
                       petal_err *err);
#endif
