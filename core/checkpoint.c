// ==== Trainer checkpoints in HDF5 ===================================================
// Layout: attributes format ("petal-checkpoint 1"), config (the trial's YAML
// text), epoch, pos, step, adam_step, best_epoch, done, right, n_train,
// n_state (int64), best_acc, loss_sum, seconds, test_acc, test_loss (double);
// datasets params/<name> (trainable rows and buffers, by name), best (the
// best-validation state packed in table order), adam_m, adam_v (the moments),
// rng (4 uint64), order (n_train int32), history (epochs x 6 double: train
// loss, train acc, valid loss, valid acc, lr, seconds).
// A finished trial's checkpoint (done 1) has no params group and no moments:
// nothing trains from it again, and what it is read for (its results, its
// history, predictions and exported backbones) takes the best state. For full
// fine-tuning that is a quarter of the size (ViT-B: ~330 MB instead of ~1.3 GB).
// A PETL checkpoint holds no backbone tensor: it is kilobytes to megabytes.
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "core/h5.h"
#include "core/checkpoint.h"

#define FORMAT "petal-checkpoint 1"
// More classes than any corpus petal reads has (labels are < 100000).
#define CHECKPOINT_K_MAX 100000

static int fsync_path(const char *path, int dir) {
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int checkpoint_save(const trainer *t, const char *path, const char *config_text, petal_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    h5_quiet quiet = h5_quiet_begin();  // petal reports HDF5 errors itself
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int bad = f < 0;
    if (!bad) {
        long long iv[] = {t->epoch, t->pos, t->step, t->opt.step, t->best_epoch, t->done,
                          t->right, t->train->n, (long long)t->nbest};
        const char *in[] = {"epoch", "pos", "step", "adam_step", "best_epoch", "done",
                            "right", "n_train", "n_state"};
        double dv[] = {t->best_acc, t->loss_sum, t->seconds, t->test_acc, t->test_loss};
        const char *dn[] = {"best_acc", "loss_sum", "seconds", "test_acc", "test_loss"};
        bad |= h5_put_str(f, "format", FORMAT);
        bad |= h5_put_str(f, "config", config_text ? config_text : "");
        for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++)
            bad |= h5_put_i64(f, in[i], iv[i]);
        for (size_t i = 0; i < sizeof dv / sizeof dv[0]; i++)
            bad |= h5_put_attr(f, dn[i], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &dv[i]);
        petal_err perr;
        if (!t->done) bad |= param_save_h5(&t->m.params, f, "params", PARAM_STATE, &perr) != PETAL_OK;
        hsize_t nb = t->nbest ? t->nbest : 1, ng = t->opt.n ? t->opt.n : 1;
        hsize_t n4 = 4, no = (hsize_t)(t->train->n ? t->train->n : 1);
        hsize_t hd[2] = {(hsize_t)(t->tc.epochs ? t->tc.epochs : 1), 6};
        float zero = 0.0f;
        bad |= h5_put_data(f, "best", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->nbest ? t->best : &zero, 1, &nb);
        if (!t->done) {
            bad |= h5_put_data(f, "adam_m", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->opt.n ? t->opt.m : &zero, 1, &ng);
            bad |= h5_put_data(f, "adam_v", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->opt.n ? t->opt.v : &zero, 1, &ng);
        }
        bad |= h5_put_data(f, "rng", H5T_STD_U64LE, H5T_NATIVE_UINT64, t->rng.s, 1, &n4);
        bad |= h5_put_data(f, "order", H5T_STD_I32LE, H5T_NATIVE_INT, t->order, 1, &no);
        bad |= h5_put_data(f, "history", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t->hist, 2, hd);
        long long K = t->m.cfg.K;
        bad |= h5_put_i64(f, "K", K);
        if (t->labels) {  // variable-length UTF-8 strings
            hid_t st = H5Tcopy(H5T_C_S1);
            H5Tset_size(st, H5T_VARIABLE);
            H5Tset_cset(st, H5T_CSET_UTF8);
            hsize_t nk = (hsize_t)K;
            bad |= h5_put_data(f, "labels", st, st, t->labels, 1, &nk);
            H5Tclose(st);
        }
        bad |= H5Fclose(f) < 0;
    }
    h5_quiet_end(quiet);
    // Durable before it replaces the old one: data, then the rename, then the folder.
    if (bad || fsync_path(tmp, 0) || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return petal_fail(err, PETAL_EFAIL, "%s: cannot write checkpoint: %s", path,
                          bad ? "HDF5 write failed (disk full or I/O error)" : strerror(e));
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    fsync_path(dirname(dir), 1);
    return PETAL_OK;
}

// The scalar fields against this trial (a damaged or hand-edited checkpoint
// must not steer the trainer out of its arrays): iv are epoch, pos, step,
// adam_step, best_epoch, done, right, n_train, n_state; dv best_acc,
// loss_sum, seconds, test_acc, test_loss.
static int check_fields(const trainer *t, const long long *iv, const double *dv,
                        const char *path, petal_err *err) {
    long long n = t->train->n, epochs = t->tc.epochs, batch = t->tc.batch;
    long long epoch = iv[0], pos = iv[1], step = iv[2], adam = iv[3], best = iv[4], done = iv[5],
              right = iv[6];
    long long spe = (n + batch - 1) / batch;
    const char *bad = NULL;
    char why[200];
    if (iv[7] != n) bad = "n_train", snprintf(why, sizeof why, "%lld, the trial has %lld training examples", iv[7], n);
    else if (iv[8] != (long long)t->nbest)
        bad = "n_state", snprintf(why, sizeof why, "%lld, the model has %zu state values", iv[8], t->nbest);
    else if (epoch < 0 || epoch > epochs) bad = "epoch", snprintf(why, sizeof why, "%lld is not in 0..%lld", epoch, epochs);
    else if (pos < 0 || pos >= (n ? n : 1) || pos % batch)
        bad = "pos", snprintf(why, sizeof why, "%lld is not a batch start in 0..%lld", pos, n - 1);
    else if (step != epoch * spe + pos / batch)
        bad = "step", snprintf(why, sizeof why, "%lld does not match epoch %lld and pos %lld", step, epoch, pos);
    else if (adam < 0 || adam > step) bad = "adam_step", snprintf(why, sizeof why, "%lld is not in 0..%lld", adam, step);
    else if (best < 0 || best > epoch) bad = "best_epoch", snprintf(why, sizeof why, "%lld is not in 0..%lld", best, epoch);
    else if (done != (epoch == epochs && pos == 0))
        bad = "done", snprintf(why, sizeof why, "%lld does not match epoch %lld of %lld", done, epoch, epochs);
    else if (right < 0 || right > pos) bad = "right", snprintf(why, sizeof why, "%lld is not in 0..%lld", right, pos);
    else if (!isfinite(dv[0]) || dv[0] < -1 || dv[0] > 1) bad = "best_acc", snprintf(why, sizeof why, "%g", dv[0]);
    else if (!isfinite(dv[1]) || dv[1] < 0) bad = "loss_sum", snprintf(why, sizeof why, "%g", dv[1]);
    else if (!isfinite(dv[2]) || dv[2] < 0) bad = "seconds", snprintf(why, sizeof why, "%g", dv[2]);
    if (!bad) return PETAL_OK;
    return petal_fail(err, PETAL_EINPUT, "%s: checkpoint field %s %s", path, bad, why);
}

// The epoch's order must be a permutation of the training set (the trainer
// indexes the examples with it).
static int check_order(const trainer *t, const char *path, petal_err *err) {
    int n = t->train->n;
    char *seen = petal_calloc((size_t)(n ? n : 1), 1);
    int bad = -1;
    for (int i = 0; i < n && bad < 0; i++) {
        int k = t->order[i];
        if (k < 0 || k >= n || seen[k]) bad = i;
        else seen[k] = 1;
    }
    free(seen);
    if (bad < 0) return PETAL_OK;
    return petal_fail(err, PETAL_EINPUT,
                      "%s: checkpoint field order[%d] = %d is not a permutation of 0..%d", path,
                      bad, t->order[bad], n - 1);
}

int checkpoint_load(trainer *t, const char *path, const char *config_text, petal_err *err) {
    h5_quiet quiet = h5_quiet_begin();  // petal reports HDF5 errors itself
    int st = PETAL_OK;
    char *format = NULL, *config = NULL;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        st = petal_fail(err, PETAL_EINPUT, "%s: not a readable checkpoint (truncated or not HDF5)",
                        path);
        goto out;
    }
    format = h5_get_str(f, "format");
    config = h5_get_str(f, "config");
    if (!format || strcmp(format, FORMAT)) {
        st = petal_fail(err, PETAL_EINPUT, "%s: not a petal checkpoint", path);
        goto out;
    }
    if (!config || strcmp(config, config_text ? config_text : "")) {
        st = petal_fail(err, PETAL_EINPUT,
                        "%s: checkpoint of another trial configuration (delete it or use "
                        "another output folder)", path);
        goto out;
    }
    long long iv[9];
    const char *in[] = {"epoch", "pos", "step", "adam_step", "best_epoch", "done",
                        "right", "n_train", "n_state"};
    double dv[5];
    const char *dn[] = {"best_acc", "loss_sum", "seconds", "test_acc", "test_loss"};
    int bad = 0;
    for (int i = 0; i < 9; i++) bad |= h5_get_attr(f, in[i], H5T_NATIVE_LLONG, &iv[i]);
    for (int i = 0; i < 5; i++) bad |= h5_get_attr(f, dn[i], H5T_NATIVE_DOUBLE, &dv[i]);
    if (bad) {
        st = petal_fail(err, PETAL_EINPUT, "%s: checkpoint fields missing or unreadable", path);
        goto out;
    }
    if ((st = check_fields(t, iv, dv, path, err))) goto out;
    long long K = -1;
    if (h5_get_attr(f, "K", H5T_NATIVE_LLONG, &K) || K != t->m.cfg.K) {
        st = petal_fail(err, PETAL_EINPUT, "%s: checkpoint field K is %lld, this trial has %d classes",
                        path, K, t->m.cfg.K);
        goto out;
    }
    // A finished trial's file holds the best state alone (older files also hold
    // the live state and the moments; they are not read): the model takes it.
    int done = iv[5] != 0;
    if (!done && (st = param_load_h5(&t->m.params, path, "params", PARAM_STATE, err))) goto out;
    hsize_t hn = (hsize_t)(t->tc.epochs ? t->tc.epochs : 1) * 6;
    float zero;
    bad |= h5_get_data(f, "best", H5T_NATIVE_FLOAT, t->nbest ? t->best : &zero, t->nbest ? t->nbest : 1);
    if (!done) {
        bad |= h5_get_data(f, "adam_m", H5T_NATIVE_FLOAT, t->opt.n ? t->opt.m : &zero, t->opt.n ? t->opt.n : 1);
        bad |= h5_get_data(f, "adam_v", H5T_NATIVE_FLOAT, t->opt.n ? t->opt.v : &zero, t->opt.n ? t->opt.n : 1);
    } else if (t->opt.n) {
        memset(t->opt.m, 0, t->opt.n * sizeof *t->opt.m);
        memset(t->opt.v, 0, t->opt.n * sizeof *t->opt.v);
    }
    bad |= h5_get_data(f, "rng", H5T_NATIVE_UINT64, t->rng.s, 4);
    bad |= h5_get_data(f, "order", H5T_NATIVE_INT, t->order, (hsize_t)(t->train->n ? t->train->n : 1));
    bad |= h5_get_data(f, "history", H5T_NATIVE_DOUBLE, t->hist, hn);
    if (bad) {
        st = petal_fail(err, PETAL_EINPUT, "%s: checkpoint tensors missing or of the wrong size",
                        path);
        goto out;
    }
    if ((st = check_order(t, path, err))) goto out;
    if (done) param_unpack(&t->m.params, t->best, PARAM_STATE);
    t->epoch = (int)iv[0], t->pos = (int)iv[1], t->step = iv[2], t->opt.step = iv[3];
    t->best_epoch = (int)iv[4], t->done = (int)iv[5], t->right = iv[6];
    t->best_acc = dv[0], t->loss_sum = dv[1], t->seconds = dv[2];
    t->test_acc = dv[3], t->test_loss = dv[4];
out:
    if (f >= 0) H5Fclose(f);
    h5_quiet_end(quiet);
    free(format);
    free(config);
    return st;
}

int checkpoint_read_meta(char **config_text, int *K, char ***labels, const char *path,
                         petal_err *err) {
    *config_text = NULL;
    *labels = NULL;
    h5_quiet quiet = h5_quiet_begin();  // petal reports HDF5 errors itself
    int st = PETAL_OK;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *format = f >= 0 ? h5_get_str(f, "format") : NULL;
    long long k = 0;
    if (f < 0 || !format || strcmp(format, FORMAT) || h5_get_attr(f, "K", H5T_NATIVE_LLONG, &k) ||
        k < 2 || k > CHECKPOINT_K_MAX || !(*config_text = h5_get_str(f, "config"))) {
        st = petal_fail(err, PETAL_EINPUT, "%s: not a petal checkpoint", path);
    } else if (H5Lexists(f, "labels", H5P_DEFAULT) > 0) {
        char **v = petal_calloc((size_t)k, sizeof *v);
        hid_t st_t = H5Tcopy(H5T_C_S1);
        H5Tset_size(st_t, H5T_VARIABLE);
        H5Tset_cset(st_t, H5T_CSET_UTF8);
        if (h5_get_data(f, "labels", st_t, v, (hsize_t)k)) {
            st = petal_fail(err, PETAL_EINPUT, "%s: labels unreadable", path);
            free(v);
        } else {
            *labels = v;  // strings allocated by HDF5's default allocator (malloc)
        }
        H5Tclose(st_t);
    }
    *K = (int)k;
    free(format);
    if (f >= 0) H5Fclose(f);
    h5_quiet_end(quiet);
    return st;
}

void checkpoint_labels_free(char **labels, int K) {
    for (int i = 0; labels && i < K; i++) free(labels[i]);
    free(labels);
}

int checkpoint_load_best(ast_model *m, int *finished, const char *path, petal_err *err) {
    size_t n = param_count_selected(&m->params, PARAM_STATE);
    float *best = petal_falloc(n ? n : 1);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    long long ns = -1, done = 0;
    int bad = f < 0 || h5_get_attr(f, "n_state", H5T_NATIVE_LLONG, &ns) || ns != (long long)n ||
              h5_get_attr(f, "done", H5T_NATIVE_LLONG, &done) ||
              h5_get_data(f, "best", H5T_NATIVE_FLOAT, best, n ? n : 1);
    if (f >= 0) H5Fclose(f);
    if (!bad) param_unpack(&m->params, best, PARAM_STATE);
    free(best);
    if (bad)
        return petal_fail(err, PETAL_EINPUT, "%s: no best state for this model in the checkpoint",
                          path);
    *finished = done != 0;
    return PETAL_OK;
}
