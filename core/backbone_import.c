// ==== HuggingFace AST checkpoints (config.json + model.safetensors) -> a model ====
#include "core/backbone.h"


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


#include "core/backbone_internal.h"
#include "core/json.h"
#include "core/safetensors.h"

// ---- HuggingFace import -----------------------------------------------------------

// Whole file into a NUL-terminated buffer.
static int read_text(char **out, size_t *n, const char *path, petal_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return petal_fail(err, PETAL_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > (64 << 20)) {
        fclose(fp);
        return petal_fail(err, PETAL_EINPUT, "%s: not a regular file of at most 64 MiB", path);
    }
    size_t size = (size_t)sb.st_size;
    char *buf = petal_malloc(size + 1);
    size_t got = fread(buf, 1, size, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (bad || got != size) {
        free(buf);
        return petal_fail(err, PETAL_EINPUT, "%s: read error", path);
    }
    buf[size] = 0;
    *out = buf;
    *n = size;
    return PETAL_OK;
}

// A short rendering of a JSON value for messages.
static const char *show(const json_value *v, char *buf, size_t n) {
    if (v->type == JSON_NUMBER) snprintf(buf, n, "%.17g", v->num);
    else if (v->type == JSON_STRING) snprintf(buf, n, "\"%.40s\"", v->str);
    else snprintf(buf, n, "a%s %s", v->type == JSON_ARRAY || v->type == JSON_OBJECT ? "n" : "",
                  json_type_name(v->type));
    return buf;
}

static int cfg_int(int *out, const json_value *root, const char *key, int lo, int hi,
                   const char *path, petal_err *err) {
    const json_value *v = json_get(root, key);
    if (!v)
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: missing field \"%s\"", path, root->line,
                          root->col, key);
    long long x;
    char b[64];
    if (!json_int(v, &x, lo, hi))
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: field \"%s\" must be an integer in [%d, %d], "
                          "got %s", path, v->line, v->col, key, lo, hi, show(v, b, sizeof b));
    *out = (int)x;
    return PETAL_OK;
}

// config.json -> sizes (frames = max_length), whether the architecture is a
// classifier, and id2label (labels NULL, *K 0 when absent).
static int parse_hf_config(ast_config *cfg, int *arch_classifier, char ***labels, int *K,
                           const json_value *root, const char *path, petal_err *err) {
    *labels = NULL;
    *K = 0;
    *arch_classifier = 0;
    if (root->type != JSON_OBJECT)
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: expected a JSON object, got %s", path,
                          root->line, root->col, json_type_name(root->type));
    memset(cfg, 0, sizeof *cfg);
    const struct {
        const char *key;
        int *v;
        int lo, hi;
    } f[] = {{"hidden_size", &cfg->C, 1, 1 << 16},
             {"num_hidden_layers", &cfg->L, 0, 1024},
             {"num_attention_heads", &cfg->NH, 1, 1024},
             {"intermediate_size", &cfg->MLP, 1, 1 << 20},
             {"num_mel_bins", &cfg->F, 1, 4096},
             {"max_length", &cfg->frames, 1, 1 << 20},
             {"patch_size", &cfg->patch, 1, 1024},
             {"frequency_stride", &cfg->fstride, 1, 1024},
             {"time_stride", &cfg->tstride, 1, 1024}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int st = cfg_int(f[i].v, root, f[i].key, f[i].lo, f[i].hi, path, err);
        if (st) return st;
    }
    char b[64];
    const json_value *eps = json_get(root, "layer_norm_eps");
    if (!eps)
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: missing field \"layer_norm_eps\"", path,
                          root->line, root->col);
    if (eps->type != JSON_NUMBER || !(eps->num > 0 && eps->num < 1))
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: field \"layer_norm_eps\" must be a number "
                          "in (0, 1), got %s", path, eps->line, eps->col, show(eps, b, sizeof b));
    cfg->ln_eps = (float)eps->num;
    // Settings that would change the computation: only the ones petal implements.
    const json_value *act = json_get(root, "hidden_act");
    if (act && !(act->type == JSON_STRING && !strcmp(act->str, "gelu")))
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: hidden_act %s is not supported (gelu)",
                          path, act->line, act->col, show(act, b, sizeof b));
    const json_value *qkvb = json_get(root, "qkv_bias");
    if (qkvb && !(qkvb->type == JSON_BOOL && qkvb->num == 1))
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: qkv_bias must be true (petal's "
                          "projections have biases)", path, qkvb->line, qkvb->col);
    const json_value *arch = json_get(root, "architectures");
    if (arch && arch->type == JSON_ARRAY)
        for (size_t i = 0; i < arch->len; i++)
            if (arch->items[i].type == JSON_STRING &&
                !strcmp(arch->items[i].str, "ASTForAudioClassification"))
                *arch_classifier = 1;
    const json_value *id2 = json_get(root, "id2label");
    if (!id2) return PETAL_OK;
    if (id2->type != JSON_OBJECT || id2->len < 1 || id2->len > 1000000)
        return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: id2label must be a non-empty object", path,
                          id2->line, id2->col);
    int n = (int)id2->len;
    char **lab = petal_calloc((size_t)n, sizeof *lab);
    for (int i = 0; i < n; i++) {
        const json_value *v = &id2->items[i];
        char *end;
        long id = strtol(id2->keys[i], &end, 10);
        const char *why = NULL;
        if (!id2->keys[i][0] || *end || id < 0 || id >= n) why = "keys must be 0 .. K-1";
        else if (lab[id]) why = "keys must be 0 .. K-1, each once";
        else if (v->type != JSON_STRING) why = "values must be strings";
        if (why) {
            backbone_labels_free(lab, n);
            return petal_fail(err, PETAL_EINPUT, "%s:%d:%d: id2label entry \"%.40s\": %s", path,
                              v->line, v->col, id2->keys[i], why);
        }
        lab[id] = petal_malloc(v->len + 1);
        memcpy(lab[id], v->str, v->len + 1);
    }
    *labels = lab;
    *K = n;
    return PETAL_OK;
}

static void shape_str(char *buf, size_t n, int ndim, const long long *shape) {
    int k = snprintf(buf, n, "(");
    for (int i = 0; i < ndim && k > 0 && (size_t)k < n; i++)
        k += snprintf(buf + k, n - (size_t)k, i ? ", %lld" : "%lld", shape[i]);
    if (k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, ")");
}

// Copies the checkpoint's tensors into m (names, shapes, dtypes checked; the
// position embeddings re-gridded from t_old patches along time).
static int copy_tensors(ast_model *m, const st_file *sf, const char *prefix, int head, int t_old,
                        petal_err *err) {
    const param_table *t = &m->params;
    const ast_config *c = &m->cfg;
    int f_dim = ast_fdim(c), t_new = ast_tdim(c);
    unsigned char *used = petal_calloc((size_t)(sf->n ? sf->n : 1), 1);
    int st = PETAL_OK;
    for (int i = 0; i < t->nrows && !st; i++) {
        const param_row *r = &t->rows[i];
        int is_head = backbone_is_head_row(r);
        if (!(r->backbone || (head && is_head))) continue;
        char name[PARAM_NAME_MAX + 64], want[96], got[96];
        snprintf(name, sizeof name, "%s%s", is_head ? "" : prefix, r->name);
        long long shape[PARAM_MAX_DIMS];
        for (int k = 0; k < r->ndim; k++) shape[k] = r->shape[k];
        int is_pos = !strcmp(r->name, backbone_pos_name);
        if (is_pos) shape[1] = 2 + (long long)f_dim * t_old;
        const st_tensor *x = st_find(sf, name);
        if (!x) {
            st = petal_fail(err, PETAL_EINPUT, "%s: missing tensor %s", sf->path, name);
            break;
        }
        used[x - sf->t] = 1;
        int ok = x->ndim == r->ndim;
        for (int k = 0; ok && k < r->ndim; k++) ok = x->shape[k] == shape[k];
        if (!ok) {
            shape_str(want, sizeof want, r->ndim, shape);
            shape_str(got, sizeof got, x->ndim, x->shape);
            st = petal_fail(err, PETAL_EINPUT, "%s: tensor %s has shape %s, expected %s", sf->path,
                            name, got, want);
        } else if (x->dtype == ST_OTHER) {
            st = petal_fail(err, PETAL_EINPUT, "%s: tensor %s has dtype %s (F32, F16, BF16 or F64 "
                            "expected)", sf->path, name, x->dtype_name);
        } else if (is_pos && t_old != t_new) {
            float *tmp = petal_falloc(x->nelem);
            st_read_f32(tmp, sf, x);
            backbone_regrid_pos(param_data(t, i), t_new, tmp, t_old, f_dim, c->C);
            free(tmp);
        } else {
            st_read_f32(param_data(t, i), sf, x);
        }
    }
    for (int i = 0; i < sf->n && !st; i++)
        if (!used[i])
            st = petal_fail(err, PETAL_EINPUT, "%s: unexpected tensor %s (not in an AST%s with "
                            "config.json's sizes)", sf->path, sf->t[i].name,
                            head ? " classifier" : "");
    free(used);
    return st;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int backbone_import_hf(ast_model *m, int *has_head, char ***labels, const char *dir, int frames,
                       petal_err *err) {
    memset(m, 0, sizeof *m);
    *has_head = 0;
    *labels = NULL;
    size_t dl = strlen(dir);
    char *cpath = petal_malloc(dl + 32), *spath = petal_malloc(dl + 32);
    snprintf(cpath, dl + 32, "%s/config.json", dir);
    snprintf(spath, dl + 32, "%s/model.safetensors", dir);
    char *text = NULL, **lab = NULL;
    size_t n = 0;
    json_value *root = NULL;
    st_file sf = {0};
    int K = 0, arch_cls = 0, model_ready = 0;
    ast_config cfg;
    int st = read_text(&text, &n, cpath, err);
    if (!st) st = json_parse(&root, text, n, cpath, err);
    if (!st) st = parse_hf_config(&cfg, &arch_cls, &lab, &K, root, cpath, err);
    if (st) goto out;
    if (!file_exists(spath)) {
        // spath is "<dir>/model.safetensors": swap the name (a memcpy, since
        // GCC's format checks under -fsanitize flags misjudge snprintf here)
        memcpy(spath + dl, "/pytorch_model.bin", sizeof "/pytorch_model.bin");
        if (file_exists(spath))
            st = petal_fail(err, PETAL_EINPUT, "%s: PyTorch pickle checkpoints are not read; "
                            "give a directory with model.safetensors", spath);
        else
            st = petal_fail(err, PETAL_EINPUT, "%s/model.safetensors: no such file", dir);
        goto out;
    }
    st = st_open(&sf, spath, err);
    if (st) goto out;
    const char *prefix = "audio_spectrogram_transformer.";
    if (!st_find(&sf, "audio_spectrogram_transformer.embeddings.cls_token")) {
        prefix = "";
        if (!st_find(&sf, "embeddings.cls_token")) {
            st = petal_fail(err, PETAL_EINPUT, "%s: missing tensor audio_spectrogram_transformer."
                            "embeddings.cls_token (not an AST checkpoint?)", spath);
            goto out;
        }
    }
    int head = arch_cls || st_find(&sf, "classifier.dense.weight");
    const st_tensor *hb = st_find(&sf, "classifier.dense.bias");
    if (head && !K) K = hb && hb->ndim == 1 ? (int)hb->shape[0] : 0;  // no id2label
    if (head && K < 2) {
        st = petal_fail(err, PETAL_EINPUT, "%s: classifier with %d classes (id2label in %s or "
                        "classifier.dense.bias gives K >= 2)", spath, K, cpath);
        goto out;
    }
    cfg.K = head ? K : 2;  // a head-less backbone still gets an (unused, unsaved) head
    cfg.head_ln = head;
    cfg.pool = head ? POOL_CLS_DIST : POOL_ALL;
    char msg[sizeof err->msg];
    st = ast_config_check(&cfg, err);  // the checkpoint's own sizes first
    if (st) {
        snprintf(msg, sizeof msg, "%s", err->msg);
        st = petal_fail(err, PETAL_EINPUT, "%s: %s", cpath, msg);
        goto out;
    }
    int t_old = ast_tdim(&cfg);
    if (frames > 0) cfg.frames = frames;
    ast_method meth;
    st = ast_method_parse(&meth, "linear", err);
    if (!st) st = ast_model_init(m, &cfg, &meth, 1, err);
    if (st) {
        snprintf(msg, sizeof msg, "%s", err->msg);
        st = petal_fail(err, PETAL_EINPUT, "%s with %d frames: %s", dir, cfg.frames, msg);
        goto out;
    }
    model_ready = 1;
    st = copy_tensors(m, &sf, prefix, head, t_old, err);
    if (!st) {
        *has_head = head;
        if (head && lab) {
            *labels = lab;
            lab = NULL;
        }
    }
out:
    if (st && model_ready) ast_model_free(m);
    backbone_labels_free(lab, K);
    st_close(&sf);
    json_free(root);
    free(text);
    free(cpath);
    free(spath);
    return st;
}

