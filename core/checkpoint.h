// A fold's checkpoint (RUN/.../fold<k>.h5): the trainable rows and buffers,
// AdamW moments, step / epoch / position, the epoch's order, the RNG, the
// best-validation copy, the history, the class names and the identity text of
// the trial it belongs to. Saving is atomic: a kill at any moment leaves the
// old or the new file.
#ifndef PETAL_CHECKPOINT_H
#define PETAL_CHECKPOINT_H
#include "core/trainer.h"

int checkpoint_save(const trainer *t, const char *path, const char *config_text, petal_err *err);
// Restores t (built for the same settings) from path. A checkpoint of other
// settings (config_text differs) or another model table is PETAL_EINPUT.
int checkpoint_load(trainer *t, const char *path, const char *config_text, petal_err *err);
// For inference from a checkpoint: its settings text, class count and names
// (*labels NULL when none were saved; free with checkpoint_labels_free).
int checkpoint_read_meta(char **config_text, int *K, char ***labels, const char *path,
                         petal_err *err);
void checkpoint_labels_free(char **labels, int K);
// Loads the best-validation state into m (built for the same settings);
// *finished is 0 when the trial had not finished (its best state so far).
int checkpoint_load_best(ast_model *m, int *finished, const char *path, petal_err *err);
#endif
