// The parameter table: one row per tensor (HF name, shape, offset, trainable,
// decay) over one contiguous buffer, backbone rows first. Gradients and AdamW
// moments live in buffers that hold only the trainable rows, so frozen tensors
// cost no gradient or optimizer memory and the optimizer is one loop; with
// layer_grads the encoder layers' gradients share one layer's block.
#ifndef PETAL_PARAMS_H
#define PETAL_PARAMS_H
#include <stddef.h>

#include "core/common.h"

#define PARAM_NAME_MAX 96
#define PARAM_MAX_DIMS 4
#define PARAM_PAGE_FLOATS 1024  // 4 KiB pages: the backbone region ends on one

typedef struct {
    char name[PARAM_NAME_MAX];
    int ndim;
    int shape[PARAM_MAX_DIMS];
    size_t n;        // elements
    size_t offset;   // into param_table.data
    ptrdiff_t goff;  // into param_table.grad; -1 when frozen
    ptrdiff_t moff;  // into the AdamW moments (trainable rows in table order); -1 when frozen
    int layer;       // encoder layer of an `encoder.layer.<l>.` tensor, else -1
    int slot;        // place in forward order: -1 embeddings, 2l MHSA side of layer l,
                     // 2l+1 FFN side, 2L final LayerNorm and head
    unsigned char trainable, decay;
    unsigned char backbone;  // part of an imported/pretrained backbone (else a method's own)
    unsigned char buffer;    // state that is not trained (BatchNorm running statistics)
    unsigned char inert;     // frozen and never read, yet counted as trainable: the
                             // reference's discarded Conformer LayerNorm (requires_grad,
                             // no gradient ever); see param_count
    unsigned char init;      // PARAM_INIT_*
    float init_scale;        // std or bound of the initialiser
} param_row;

enum { PARAM_INIT_ZERO, PARAM_INIT_ONE, PARAM_INIT_TRUNC_NORMAL, PARAM_INIT_UNIFORM,
       PARAM_INIT_NORMAL };

typedef struct {
    param_row *rows;
    int nrows, cap;
    float *data;   // (ndata) every tensor: backbone rows first (table order), then the rest
    size_t ndata;
    size_t nbackbone;  // floats of the backbone region data[0, nbackbone), page-rounded
    size_t nshared;    // bytes of it mapped from the node's backbone image (core/backbone_image.c)
    float *grad;   // (ngrad) trainable tensors only, in table order; with layer_grads
                   // the rows outside the layers, then one encoder layer's block that
                   // every layer's rows share (the optimizer applies each layer's
                   // gradients before the next layer's backward writes them)
    size_t ngrad;
    size_t glayer;    // with layer_grads: where the shared layer block starts in grad
    size_t nmom;      // floats of each AdamW moment: every trainable row, in table order
    int layer_grads;  // set before param_table_alloc
} param_table;

// Appends a row (before param_table_alloc); returns its index. Init defaults to
// zero; callers set the other row fields they need.
int param_add(param_table *t, const char *name, int slot, int trainable, int ndim, const int *shape);
// Lays out offsets and allocates data (zeroed) and grad buffers.
void param_table_alloc(param_table *t);
void param_table_free(param_table *t);
// Row index of a name, or -1.
int param_find(const param_table *t, const char *name);
float *param_data(const param_table *t, int row);
// NULL when the row is frozen.
float *param_grad(const param_table *t, int row);
// adamw_apply's `layer` for every row (-1 is the rows outside the encoder layers).
#define PARAM_EVERY_LAYER (-2)
// Counts parameter elements: every row but the buffers (BatchNorm running
// statistics), or only trainable ones (inert rows included: they count as the
// reference counts them).
size_t param_count(const param_table *t, int trainable_only);
// Lowest `slot` among trainable rows (the backward can stop there);
// INT_MAX when nothing is trainable.
int param_lowest_trainable_slot(const param_table *t);
// Fills every row from its init kind and scale, seeded. With skip_backbone the
// backbone rows are left as they are (a backbone file will fill them) and
// every other row gets the same values as without.
void param_init(param_table *t, uint64_t seed, int skip_backbone);
// Formats "name (a, b, c)" into buf.
void param_shape_str(char *buf, size_t n, const param_row *r);

// Which rows an operation covers.
enum {
    PARAM_ALL,       // every row
    PARAM_BACKBONE,  // the pretrained backbone's rows (a backbone file has no method tensors)
    PARAM_STATE,     // what training changes: trainable rows and buffers (a checkpoint)
};
int param_selected(const param_row *r, int which);
// Reads the selected rows from HDF5 datasets `<group>/<name>`, checking shapes.
// Missing or wrong-shaped tensors fail with the file and tensor named.
int param_load_h5(param_table *t, const char *path, const char *group, int which,
                  petal_err *err);
// Writes the selected rows as `<group>/<name>` into an open file.
int param_save_h5(const param_table *t, long long file_id, const char *group, int which,
                  petal_err *err);
// Floats in the selected rows; pack copies them (table order) into / out of buf.
size_t param_count_selected(const param_table *t, int which);
void param_pack(float *buf, const param_table *t, int which);
void param_unpack(param_table *t, const float *buf, int which);
#endif
