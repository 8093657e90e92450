// The C core against the PyTorch reference (tests/torch_ref.py ->
// tests/fixtures/ast_tiny.h5 for full / linear / bitfit and the poolings,
// ast_methods.h5 for every PETL method): per case, the logits and loss, every
// trainable gradient, and 5 AdamW + cosine steps (loss trajectory, final
// trainable tensors, BatchNorm running statistics and eval-mode logits).
// Relative L2 per tensor: forward <= 1e-4, gradients <= 1e-3, trajectory <= 1e-3.
#include <hdf5.h>
#include <string.h>

#include "core/adamw.h"
#include "core/ast.h"
#include "tests/check.h"
#include "tests/gradcheck.h"

static const char *fixture;
static hid_t fx;

static int read_attr_int(hid_t obj, const char *name) {
    int v = 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    PETAL_ASSERT(a >= 0 && H5Aread(a, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(a);
    return v;
}

static double read_attr_double(hid_t obj, const char *name) {
    double v = 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    PETAL_ASSERT(a >= 0 && H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a);
    return v;
}

// Fixed-length string attribute (h5py writes them NULLPAD, not terminated).
static void read_attr_str(char *out, size_t n, hid_t obj, const char *name) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    PETAL_ASSERT(a >= 0);
    hid_t t = H5Aget_type(a);
    size_t len = H5Tget_size(t);
    PETAL_ASSERT(len < n && H5Aread(a, t, out) >= 0);
    out[len] = 0;
    H5Tclose(t);
    H5Aclose(a);
}

// Reads a whole dataset as doubles; returns its element count (0 if absent).
static size_t read_doubles(double **out, const char *path) {
    *out = NULL;
    if (H5Lexists(fx, path, H5P_DEFAULT) <= 0) return 0;
    hid_t d = H5Dopen2(fx, path, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    size_t n = (size_t)H5Sget_simple_extent_npoints(s);
    *out = petal_malloc(n * sizeof **out);
    PETAL_ASSERT(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    return n;
}

// Gradients that are zero in exact arithmetic (stored values are round-off):
// the key bias (softmax ignores the per-query constant q.b_k) and the
// Conformer depthwise bias (training-mode BatchNorm removes per-channel constants).
static int is_zero_grad(const char *name) {
    return strstr(name, "attention.attention.key.bias") || strstr(name, ".dw.bias");
}

static int has_attr(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

// ast_methods.h5 cases: base + flat settings -> method, via ast_method_set.
static int method_from_attrs(ast_method *m, hid_t g, petal_err *err) {
    char v[64];
    int st = ast_method_parse(m, "linear", err);
    static const struct {
        const char *attr, *key;
        char kind;  // 's' string, 'i' int (0 = unset), 'f' float
    } map[] = {
        {"base", "base", 's'},
        {"lora_targets", "lora.targets", 's'},
        {"lora_rr", "lora.rr", 'i'},
        {"lora_alpha", "lora.alpha", 'f'},
        {"lora_init", "lora.init", 's'},
        {"adapter_type", "adapter.type", 's'},
        {"adapter_location", "adapter.location", 's'},
        {"adapter_block", "adapter.block", 's'},
        {"adapter_conf", "adapter.conf", 's'},
        {"adapter_position", "adapter.position", 's'},
        {"adapter_residual", "adapter.residual", 'i'},
        {"adapter_seq_add", "adapter.seq_add", 'i'},
        {"adapter_rr", "adapter.rr", 'i'},
        {"adapter_init", "adapter.init", 's'},
        {"conformer_kernel", "adapter.kernel", 'i'},
        {"adapter_norm", "adapter.norm", 's'},
        {"prompt_tokens", "prompt.tokens", 'i'},
        {"prompt_deep", "prompt.deep", 'i'},
        {"prefix_tokens", "prefix.tokens", 'i'},
        {"moa_kind", "moa.kind", 's'},
        {"moa_experts", "moa.experts", 'i'},
        {"moa_slots", "moa.slots", 'i'},
        {"moa_location", "moa.location", 's'},
        {"moa_rr", "moa.rr", 'i'},
        {"moa_init", "moa.init", 's'},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0] && !st; i++) {
        if (!has_attr(g, map[i].attr)) continue;
        if (map[i].kind == 's') read_attr_str(v, sizeof v, g, map[i].attr);
        else if (map[i].kind == 'f') snprintf(v, sizeof v, "%.9g", read_attr_double(g, map[i].attr));
        else snprintf(v, sizeof v, "%d", read_attr_int(g, map[i].attr));
        if (map[i].kind == 'i' && !strcmp(v, "0") && strstr(map[i].key, "rr")) continue;
        st = ast_method_set(m, map[i].key, v, err);
    }
    // sizes given as rank / dim when not as rr
    if (!st && has_attr(g, "lora_rank") && (!has_attr(g, "lora_rr") || !read_attr_int(g, "lora_rr"))) {
        snprintf(v, sizeof v, "%d", read_attr_int(g, "lora_rank"));
        st = ast_method_set(m, "lora.rank", v, err);
    }
    if (!st && has_attr(g, "adapter_dim") &&
        (!has_attr(g, "adapter_rr") || !read_attr_int(g, "adapter_rr"))) {
        snprintf(v, sizeof v, "%d", read_attr_int(g, "adapter_dim"));
        st = ast_method_set(m, "adapter.dim", v, err);
    }
    if (!st && has_attr(g, "moa_dim") && (!has_attr(g, "moa_rr") || !read_attr_int(g, "moa_rr"))) {
        snprintf(v, sizeof v, "%d", read_attr_int(g, "moa_dim"));
        st = ast_method_set(m, "moa.dim", v, err);
    }
    return st;
}

static void check_case(const char *cse, const ast_config *base, const float *fbank,
                       const int *labels, int B) {
    char method[32] = "", pool[32], path[256];
    hid_t g = H5Gopen2(fx, cse, H5P_DEFAULT);
    PETAL_ASSERT(g >= 0);
    int flat = has_attr(g, "base");
    if (!flat) read_attr_str(method, sizeof method, g, "method");
    read_attr_str(pool, sizeof pool, g, "pool");
    adamw_config oc = {.lr = (float)read_attr_double(g, "lr"),
                       .beta1 = (float)read_attr_double(g, "beta1"),
                       .beta2 = (float)read_attr_double(g, "beta2"),
                       .eps = (float)read_attr_double(g, "eps"),
                       .weight_decay = (float)read_attr_double(g, "weight_decay")};
    int steps = read_attr_int(g, "steps");
    petal_err err;
    ast_config cfg = *base;
    ast_method meth;
    int st = flat ? method_from_attrs(&meth, g, &err) : ast_method_parse(&meth, method, &err);
    H5Gclose(g);
    CHECK(st == PETAL_OK, "%s: %s", cse, err.msg);
    CHECK(ast_pool_parse(&cfg.pool, pool, &err) == PETAL_OK, "%s: %s", cse, err.msg);
    ast_model m;
    if (ast_model_init(&m, &cfg, &meth, B, &err)) {
        CHECK(0, "%s: %s", cse, err.msg);
        return;
    }
    // Every tensor of the case's table, by name: a naming mismatch fails here.
    char ppath[128];
    snprintf(ppath, sizeof ppath, "%s/params", cse);
    if (H5Lexists(fx, ppath, H5P_DEFAULT) <= 0) snprintf(ppath, sizeof ppath, "params");
    CHECK(param_load_h5(&m.params, fixture, ppath, PARAM_ALL, &err) == PETAL_OK, "%s: %s", cse, err.msg);

    // forward
    double *ref;
    double loss = ast_forward(&m, fbank, labels, B, NULL);
    snprintf(path, sizeof path, "%s/logits", cse);
    size_t n = read_doubles(&ref, path);
    CHECK(n == (size_t)B * cfg.K, "%s: logits size", cse);
    double e = rel_l2(m.a.logits, ref, n);
    CHECK(e <= 1e-4, "%s: logits rel err %.3g", cse, e);
    free(ref);
    snprintf(path, sizeof path, "%s/loss", cse);
    read_doubles(&ref, path);
    CHECK(fabs(loss - ref[0]) <= 1e-4 * fabs(ref[0]), "%s: loss %.7f vs %.7f", cse, loss, ref[0]);
    free(ref);

    // gradients: every trainable row has a reference, and nothing else does
    ast_backward(&m, labels, B);
    int ngrads = 0;
    for (int i = 0; i < m.params.nrows; i++) {
        const param_row *r = &m.params.rows[i];
        snprintf(path, sizeof path, "%s/grads/%s", cse, r->name);
        n = read_doubles(&ref, path);
        float *gr = param_grad(&m.params, i);
        CHECK((n > 0) == (gr != NULL), "%s: %s trainable in C %d, in torch %d", cse, r->name,
              gr != NULL, n > 0);
        if (n && gr) {
            CHECK(n == r->n, "%s: %s size", cse, r->name);
            if (is_zero_grad(r->name)) {
                // Zero in exact arithmetic: softmax ignores the per-query constant q.b_k.
                double nrm = 0;
                for (size_t k = 0; k < r->n; k++) nrm += (double)gr[k] * gr[k];
                CHECK(sqrt(nrm) <= 1e-5, "%s: %s norm %.3g (expected ~0)", cse, r->name,
                      sqrt(nrm));
            } else {
                e = rel_l2(gr, ref, n);
                CHECK(e <= 1e-3, "%s: grad %s rel err %.3g", cse, r->name, e);
            }
            ngrads++;
        }
        free(ref);
    }
    CHECK(ngrads > 0, "%s: no gradients compared", cse);

    // trajectory: loss before each of `steps` AdamW + cosine steps, from the
    // stored state again (the forward above moved BatchNorm running statistics)
    CHECK(param_load_h5(&m.params, fixture, ppath, PARAM_ALL, &err) == PETAL_OK, "%s: %s", cse, err.msg);
    double *traj;
    snprintf(path, sizeof path, "%s/traj", cse);
    CHECK(read_doubles(&traj, path) == (size_t)steps, "%s: traj length", cse);
    adamw_state opt;
    adamw_init(&opt, &oc, &m.params);
    for (int s = 0; s < steps; s++) {
        double l = ast_forward(&m, fbank, labels, B, NULL);
        CHECK(fabs(l - traj[s]) <= 1e-3 * fabs(traj[s]), "%s: step %d loss %.6f vs %.6f", cse, s,
              l, traj[s]);
        ast_backward(&m, labels, B);
        adamw_step(&opt, &m.params, cosine_lr(oc.lr, s, steps));
    }
    for (int i = 0; i < m.params.nrows; i++) {
        const param_row *r = &m.params.rows[i];
        // A zero-gradient tensor's Adam steps follow the sign of round-off:
        // no reference can predict them, so only its gradient is checked.
        if ((!r->trainable && !r->buffer) || is_zero_grad(r->name)) continue;
        snprintf(path, sizeof path, "%s/final/%s", cse, r->name);
        n = read_doubles(&ref, path);
        CHECK(n == r->n, "%s: final/%s missing", cse, r->name);
        if (n == r->n) {
            e = rel_l2(param_data(&m.params, i), ref, n);
            CHECK(e <= 1e-3, "%s: final %s rel err %.3g", cse, r->name, e);
        }
        free(ref);
    }
    free(traj);
    snprintf(path, sizeof path, "%s/eval_logits", cse);
    if (read_doubles(&ref, path)) {  // BatchNorm on its running statistics
        m.training = 0;
        ast_forward(&m, fbank, NULL, B, NULL);
        e = rel_l2(m.a.logits, ref, (size_t)B * cfg.K);
        CHECK(e <= 1e-4, "%s: eval-mode logits rel err %.3g", cse, e);
        free(ref);
    }
    adamw_free(&opt);
    ast_model_free(&m);
}

static void check_file(const char *path, const char *const *cases, int ncases) {
    fixture = path;
    fx = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fx < 0) {
        CHECK(0, "cannot open %s (run `make fixtures`)", path);
        return;
    }
    ast_config cfg = {.C = read_attr_int(fx, "C"), .L = read_attr_int(fx, "L"),
                      .NH = read_attr_int(fx, "NH"), .MLP = read_attr_int(fx, "MLP"),
                      .F = read_attr_int(fx, "F"), .frames = read_attr_int(fx, "frames"),
                      .patch = read_attr_int(fx, "patch"), .fstride = read_attr_int(fx, "fstride"),
                      .tstride = read_attr_int(fx, "tstride"), .K = read_attr_int(fx, "K"),
                      .pool = POOL_ALL, .ln_eps = (float)read_attr_double(fx, "ln_eps")};
    int B = read_attr_int(fx, "B");
    double *fb64, *lab64;
    size_t nfb = read_doubles(&fb64, "input/fbank");
    size_t nlab = read_doubles(&lab64, "input/labels");
    PETAL_ASSERT(nfb == (size_t)B * cfg.frames * cfg.F && nlab == (size_t)B);
    float *fbank = petal_malloc(nfb * sizeof *fbank);
    int *labels = petal_malloc(nlab * sizeof *labels);
    for (size_t i = 0; i < nfb; i++) fbank[i] = (float)fb64[i];
    for (size_t i = 0; i < nlab; i++) labels[i] = (int)lab64[i];
    for (int i = 0; i < ncases; i++) check_case(cases[i], &cfg, fbank, labels, B);
    free(fb64), free(lab64), free(fbank), free(labels);
    H5Fclose(fx);
}

int main(void) {
    const char *backbone_cases[] = {"full", "linear", "bitfit", "full_cls", "full_cls_dist"};
    check_file("tests/fixtures/ast_tiny.h5", backbone_cases, 5);
    const char *method_cases[] = {
        "lora_qv_rank", "lora_qkvo_rr", "adapter_pfeiffer", "adapter_houlsby",
        "adapter_seq_after", "adapter_seq_before", "adapter_par_after", "conformer",
        "conformer_even", "conformer_reference", "adapter_seq_before_add",
        "prompt_shallow", "prompt_deep", "prompt_deep_speech", "prefix",
        "combo_lora_adapter", "combo_prompt_adapter", "dense_moa", "soft_moa"};
    check_file("tests/fixtures/ast_methods.h5", method_cases,
               (int)(sizeof method_cases / sizeof method_cases[0]));
    return check_done("fixtures");
}
