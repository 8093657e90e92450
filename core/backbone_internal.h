// What the three backbone files share (core/backbone.c: the file format;
// core/backbone_image.c: node-wide images; core/backbone_import.c: the
// HuggingFace import). Not an API: core/backbone.h is.
#ifndef PETAL_BACKBONE_INTERNAL_H
#define PETAL_BACKBONE_INTERNAL_H
#include "core/ast.h"

// The classifier's rows (classifier.*).
int backbone_is_head_row(const param_row *r);
// The position embeddings' row name (re-gridded when frames differ).
extern const char *const backbone_pos_name;
// Reads the backbone rows (with_backbone) and the classifier rows (with_head)
// of the file into m's own memory, re-gridding the position embeddings from
// file_frames to m's frames.
int backbone_load_rows(ast_model *m, const char *path, int with_backbone, int with_head,
                       int file_frames, petal_err *err);
// Maps m's frozen backbone rows from the node-wide image of path in dir,
// building it when missing or stale; *shared 0 (and warn says why) when the
// load must be private.
int backbone_share(int *shared, ast_model *m, const char *path, const char *dir, int file_frames,
                   petal_err *warn, petal_err *err);
#endif
