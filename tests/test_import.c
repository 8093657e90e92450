// HF AST import, backbone files and prediction, against PyTorch
// (tests/hf_ref.py -> tests/fixtures/hf_tiny/):
//  - JSON reader and safetensors reader units (escapes, positions, F16 / BF16 bits);
//  - import of the tiny ASTForAudioClassification: labels, logits on PyTorch's
//    features (model alone) and from the WAV (fbank + model, as `petal predict`)
//    at the checkpoint's 64 frames and re-gridded to 48 and 100 frames;
//  - backbone files: save -> read config -> load gives identical tensors, loading
//    at other frames re-grids, `model init` round trip;
//  - a BF16 checkpoint converts exactly;
//  - broken checkpoints (each made from the good one in a temp dir) fail with
//    PETAL_EINPUT and one line naming the file and the tensor or field.
#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/audio.h"
#include "core/backbone.h"
#include "core/fbank.h"
#include "core/json.h"
#include "core/predict.h"
#include "core/safetensors.h"
#include "tests/check.h"

#define FIX "tests/fixtures/hf_tiny"

static char tmp[] = "/tmp/petal_test_import_XXXXXX";

static size_t read_all(char **out, const char *path) {
    FILE *f = fopen(path, "rb");
    PETAL_ASSERT(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = petal_malloc((size_t)n + 1);
    PETAL_ASSERT(fread(*out, 1, (size_t)n, f) == (size_t)n);
    (*out)[n] = 0;
    fclose(f);
    return (size_t)n;
}

static void write_all(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    PETAL_ASSERT(f);
    if (n) PETAL_ASSERT(fwrite(data, 1, n, f) == n);
    PETAL_ASSERT(fclose(f) == 0);
}

// buf with the first occurrence of old replaced by new (a fresh buffer).
static char *replaced(size_t *outn, const char *buf, size_t n, const char *old, const char *new) {
    const char *p = memmem(buf, n, old, strlen(old));
    PETAL_ASSERT(p);
    size_t a = (size_t)(p - buf), lo = strlen(old), ln = strlen(new);
    char *o = petal_malloc(n - lo + ln + 1);
    memcpy(o, buf, a);
    memcpy(o + a, new, ln);
    memcpy(o + a + ln, p + lo, n - a - lo);
    *outn = n - lo + ln;
    o[*outn] = 0;
    return o;
}

// A checkpoint directory tmp/name with the given config.json and safetensors bytes.
static const char *case_dir(const char *name, const char *cfg, size_t ncfg, const char *st, size_t nst) {
    static char dir[512];
    char p[600];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_all(p, cfg, ncfg);
    if (st) {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        write_all(p, st, nst);
    }
    return dir;
}

static void expect_fail(const char *dir, const char *what, const char *s1, const char *s2) {
    ast_model m;
    int head;
    char **labels;
    petal_err err = {{0}};
    int st = backbone_import_hf(&m, &head, &labels, dir, 0, &err);
    CHECK(st == PETAL_EINPUT, "%s: status %d, want %d", what, st, PETAL_EINPUT);
    if (st == PETAL_OK) {
        backbone_labels_free(labels, m.cfg.K);
        ast_model_free(&m);
        return;
    }
    CHECK(!strchr(err.msg, '\n'), "%s: one-line message: %s", what, err.msg);
    CHECK(strstr(err.msg, s1), "%s: message names '%s': %s", what, s1, err.msg);
    if (s2) CHECK(strstr(err.msg, s2), "%s: message names '%s': %s", what, s2, err.msg);
    printf("  %-22s %s\n", what, err.msg);
}

// ---- JSON and safetensors units ---------------------------------------------------

static void test_json(void) {
    const char *good = "{\"a\": [1, -2.5e3, true, null, 0.5], \"s\": \"q\\\"\\u00e9\\ud83d\\udc26\\n\","
                       " \"o\": {}}";
    json_value *v;
    petal_err err;
    CHECK(json_parse(&v, good, strlen(good), "good", &err) == PETAL_OK, "parse: %s", err.msg);
    const json_value *a = json_get(v, "a"), *s = json_get(v, "s");
    long long x;
    CHECK(a && a->type == JSON_ARRAY && a->len == 5, "array");
    if (!a || a->len != 5) return;
    CHECK(json_int(&a->items[0], &x, 0, 10) && x == 1, "int");
    CHECK(json_int(&a->items[1], &x, -10000, 0) && x == -2500, "exponent");
    CHECK(!json_int(&a->items[4], &x, -10, 10) && a->items[4].num == 0.5, "fraction");
    CHECK(!json_int(&a->items[0], &x, 2, 10), "range");
    CHECK(a->items[2].type == JSON_BOOL && a->items[2].num == 1, "bool");
    CHECK(s && !strcmp(s->str, "q\"\xc3\xa9\xf0\x9f\x90\xa6\n"), "escapes decode to UTF-8");
    CHECK(json_get(v, "o") && json_get(v, "o")->type == JSON_OBJECT, "empty object");
    json_free(v);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"{\n  \"a\": 1,\n  \"b\": tru\n}", "src:3:8: expected a value"},
        {"[1, 2,]", "src:1:7: expected a value"},
        {"{\"a\": 1, \"a\": 2}", "duplicate key \"a\""},
        {"{\"a\" 1}", "src:1:6: expected ':'"},
        {"[01]", "src:1:3: expected ',' or ']'"},
        {"\"abc", "src:1:1: unterminated string"},
        {"\"\\x\"", "unknown escape"},
        {"\"\\ud83d\"", "unpaired UTF-16 surrogate"},
        {"{} x", "src:1:4: unexpected content"},
        {"", "src:1:1: expected a value, got end of input"},
        {"\"a\tb\"", "control character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = json_parse(&v, bad[i].text, strlen(bad[i].text), "src", &err);
        CHECK(st == PETAL_EINPUT && strstr(err.msg, bad[i].want), "json '%s': %s (want %s)",
              bad[i].text, st ? err.msg : "accepted", bad[i].want);
    }
    char deep[200];
    memset(deep, '[', sizeof deep);
    CHECK(json_parse(&v, deep, sizeof deep, "src", &err) == PETAL_EINPUT &&
          strstr(err.msg, "nesting"), "deep nesting rejected: %s", err.msg);
}

static void test_float_formats(void) {
    static const struct {
        unsigned short h;
        float f;
    } half[] = {{0x3c00, 1.0f},        {0xc000, -2.0f},        {0x7bff, 65504.0f},
                {0x0001, 0x1p-24f},    {0x03ff, 1023 * 0x1p-24f}, {0x0400, 0x1p-14f},
                {0x3555, 0.333251953125f}, {0x8000, -0.0f},     {0x7c00, INFINITY},
                {0xfc00, -INFINITY}};
    for (size_t i = 0; i < sizeof half / sizeof half[0]; i++) {
        float g = st_half_to_float(half[i].h);
        CHECK(memcmp(&g, &half[i].f, sizeof g) == 0, "half 0x%04x -> %g, want %g", half[i].h,
              (double)g, (double)half[i].f);
    }
    CHECK(isnan(st_half_to_float(0x7e00)), "half NaN");
    CHECK(st_bf16_to_float(0x3f80) == 1.0f && st_bf16_to_float(0xc049) == -3.140625f,
          "bfloat16");

    // A two-tensor file: F16 (2,) and F64 (1,), read back as floats.
    char p[600];
    snprintf(p, sizeof p, "%s/small.safetensors", tmp);
    const char hdr[] = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                       "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]}}";
    unsigned char buf[256] = {0};
    size_t hl = sizeof hdr - 1;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    unsigned char *d = buf + 8 + hl;
    d[0] = 0x00, d[1] = 0x3c, d[2] = 0x00, d[3] = 0xc0;  // 1, -2
    double dv = 0.1;
    memcpy(d + 4, &dv, 8);
    write_all(p, buf, 8 + hl + 12);
    st_file f;
    petal_err err;
    CHECK(st_open(&f, p, &err) == PETAL_OK, "small file: %s", err.msg);
    if (f.n == 2) {
        float o[2];
        st_read_f32(o, &f, st_find(&f, "h"));
        CHECK(o[0] == 1.0f && o[1] == -2.0f, "F16 read");
        st_read_f32(o, &f, st_find(&f, "d"));
        CHECK(o[0] == 0.1f, "F64 read rounds to nearest");
    }
    st_close(&f);
}

// ---- the fixture ------------------------------------------------------------------

static hid_t expected;

static void read_ds(const char *name, hid_t type, void *out) {
    hid_t d = H5Dopen2(expected, name, H5P_DEFAULT);
    PETAL_ASSERT(d >= 0 && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0);
    H5Dclose(d);
}

// max over i of min(|a - b|, |a - b| / |b|)
static double max_err(const float *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        m = fmax(m, fmin(d, d / fabs(b[i])));
    }
    return m;
}

static const char *want_labels[5] = {"Speech", "Dog \"woof\"", "Caf\xc3\xa9 ambience",
                                     "Bird \xf0\x9f\x90\xa6 song", "Siren, alarm"};

// Logits at T frames, on PyTorch's features and end to end from the WAV.
static void check_logits(ast_model *m, int T, const char *what) {
    char name[64];
    double want[5];
    snprintf(name, sizeof name, "T%d/logits", T);
    read_ds(name, H5T_NATIVE_DOUBLE, want);
    float *x = petal_falloc((size_t)T * 128);
    snprintf(name, sizeof name, "T%d/features", T);
    read_ds(name, H5T_NATIVE_FLOAT, x);
    CHECK(m->cfg.frames == T && m->cfg.K == 5, "%s: frames %d K %d", what, m->cfg.frames, m->cfg.K);
    m->training = 0;
    ast_forward(m, x, NULL, 1, NULL);
    double e_model = max_err(m->a.logits, want, 5);
    CHECK(e_model <= 1e-4, "%s: logits on PyTorch's features off by %.3g", what, e_model);

    petal_err err;
    fbank_config fc = fbank_config_ast();
    fc.max_length = T;
    fbank_plan *plan = fbank_plan_create(&fc, &err);
    PETAL_ASSERT(plan);
    // the front end alone, on the same clip
    float *wave, *feat = petal_falloc((size_t)T * 128);
    size_t n;
    PETAL_ASSERT(audio_load(&wave, &n, FIX "/clip.wav", AUDIO_RATE, &err) == PETAL_OK);
    fbank_features(feat, NULL, plan, wave, n);
    double e_feat = 0;
    for (size_t i = 0; i < (size_t)T * 128; i++) e_feat = fmax(e_feat, fabs(feat[i] - x[i]));
    CHECK(e_feat <= 1e-3, "%s: features off by %.3g", what, e_feat);
    free(wave);

    float logits[5];
    CHECK(predict_file(logits, m, plan, FIX "/clip.wav", &err) == PETAL_OK, "%s: %s", what, err.msg);
    double e_wav = max_err(logits, want, 5);
    CHECK(e_wav <= 1e-3, "%s: logits from the WAV off by %.3g", what, e_wav);
    printf("  %-22s max |d| features %.2e, logits on torch features %.2e, from the WAV %.2e\n",
           what, e_feat, e_model, e_wav);
    fbank_plan_destroy(plan);
    free(feat);
    free(x);
}

static int same_rows(const ast_model *a, const ast_model *b, int with_head, const char **bad) {
    for (int i = 0; i < a->params.nrows; i++) {
        const param_row *r = &a->params.rows[i];
        if (!r->backbone && !(with_head && !strncmp(r->name, "classifier.", 11))) continue;
        int j = param_find(&b->params, r->name);
        if (j < 0 || memcmp(param_data(&a->params, i), param_data(&b->params, j),
                            r->n * sizeof(float))) {
            *bad = r->name;
            return 0;
        }
    }
    return 1;
}

// save -> read config -> init -> load; identical tensors and logits.
static void test_file_round_trip(ast_model *m, char **labels) {
    char p[600];
    snprintf(p, sizeof p, "%s/bb.h5", tmp);
    petal_err err;
    CHECK(backbone_save(p, m, 1, labels, &err) == PETAL_OK, "save: %s", err.msg);
    char tp[620];
    snprintf(tp, sizeof tp, "%s.tmp", p);
    CHECK(access(tp, F_OK) != 0, "no .tmp left behind");
    ast_config c;
    char **lab2;
    CHECK(backbone_read_config(&c, &lab2, p, &err) == PETAL_OK, "read config: %s", err.msg);
    CHECK(c.C == 64 && c.L == 2 && c.NH == 4 && c.MLP == 256 && c.F == 128 && c.frames == 64 &&
          c.patch == 16 && c.fstride == 10 && c.tstride == 10 && c.K == 5 && c.head_ln == 1 &&
          c.pool == POOL_CLS_DIST && c.ln_eps == m->cfg.ln_eps, "config read back");
    for (int i = 0; i < 5 && lab2; i++)
        CHECK(!strcmp(lab2[i], want_labels[i]), "label %d read back: %s", i, lab2[i]);
    CHECK(lab2 != NULL, "labels stored");
    backbone_labels_free(lab2, c.K);
    ast_method meth;
    ast_model b;
    ast_method_parse(&meth, "linear", &err);
    PETAL_ASSERT(ast_model_init(&b, &c, &meth, 1, &err) == PETAL_OK);
    CHECK(backbone_load(&b, p, 1, NULL, NULL, &err) == PETAL_OK, "load: %s", err.msg);
    const char *bad = "";
    CHECK(same_rows(m, &b, 1, &bad), "tensor %s differs after the round trip", bad);
    ast_model_free(&b);

    // Loading at 48 frames re-grids: equal to importing at 48 frames.
    ast_model i48, l48;
    int head;
    char **lab3;
    PETAL_ASSERT(backbone_import_hf(&i48, &head, &lab3, FIX, 48, &err) == PETAL_OK);
    c.frames = 48;
    PETAL_ASSERT(ast_model_init(&l48, &c, &meth, 1, &err) == PETAL_OK);
    CHECK(backbone_load(&l48, p, 1, NULL, NULL, &err) == PETAL_OK, "load at 48 frames: %s", err.msg);
    CHECK(same_rows(&i48, &l48, 1, &bad), "load at 48 frames vs import at 48: %s differs", bad);
    ast_model_free(&l48);
    ast_model_free(&i48);
    backbone_labels_free(lab3, 5);

    // Architecture mismatch and a missing classifier are named.
    c.frames = 64;
    c.L = 1;
    PETAL_ASSERT(ast_model_init(&b, &c, &meth, 1, &err) == PETAL_OK);
    CHECK(backbone_load(&b, p, 1, NULL, NULL, &err) == PETAL_EINPUT && strstr(err.msg, "L=2") &&
          strstr(err.msg, p), "L mismatch named: %s", err.msg);
    ast_model_free(&b);
}

// petal model init's path: random backbone -> file -> config -> load.
static void test_init_round_trip(void) {
    char p[600];
    snprintf(p, sizeof p, "%s/init.h5", tmp);
    petal_err err;
    ast_config c, r;
    ast_method meth;
    ast_model a, b;
    ast_method_parse(&meth, "linear", &err);
    PETAL_ASSERT(ast_config_preset(&c, "tiny", 40, 2, &err) == PETAL_OK);
    PETAL_ASSERT(ast_model_init(&a, &c, &meth, 1, &err) == PETAL_OK);
    ast_init_weights(&a, 7, 0);
    CHECK(backbone_save(p, &a, 0, NULL, &err) == PETAL_OK, "init save: %s", err.msg);
    char **lab;
    CHECK(backbone_read_config(&r, &lab, p, &err) == PETAL_OK, "init config: %s", err.msg);
    CHECK(r.C == c.C && r.L == c.L && r.NH == c.NH && r.MLP == c.MLP && r.F == c.F &&
          r.frames == 40 && r.K == 0 && r.head_ln == 0 && lab == NULL && r.ln_eps == c.ln_eps,
          "head-less config read back (K %d)", r.K);
    r.K = 3;  // a new task's head
    PETAL_ASSERT(ast_model_init(&b, &r, &meth, 1, &err) == PETAL_OK);
    ast_init_weights(&b, 8, 0);  // different values everywhere first
    const char *bad = "";
    CHECK(!same_rows(&a, &b, 0, &bad), "different seeds give different backbones");
    CHECK(backbone_load(&b, p, 0, NULL, NULL, &err) == PETAL_OK, "init load: %s", err.msg);
    CHECK(same_rows(&a, &b, 0, &bad), "init round trip: %s differs", bad);
    CHECK(backbone_load(&b, p, 1, NULL, NULL, &err) == PETAL_EINPUT && strstr(err.msg, "K=0"),
          "head-less file refuses a head: %s", err.msg);
    ast_model_free(&b);
    ast_model_free(&a);
}

// The fixture converted to BF16 (truncated bits) imports to exactly those values.
static void test_bf16(const ast_model *ref) {
    st_file f;
    petal_err err;
    PETAL_ASSERT(st_open(&f, FIX "/model.safetensors", &err) == PETAL_OK);
    size_t cap = 1 << 16, hl = 0, dl = 0;
    char *h = petal_malloc(cap);
    unsigned char *data = petal_malloc(f.data_size / 2 + 16);
    hl += (size_t)snprintf(h + hl, cap - hl, "{");
    for (int i = 0; i < f.n; i++) {
        const st_tensor *t = &f.t[i];
        hl += (size_t)snprintf(h + hl, cap - hl, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[", i ? "," : "",
                               t->name);
        for (int k = 0; k < t->ndim; k++)
            hl += (size_t)snprintf(h + hl, cap - hl, k ? ",%lld" : "%lld", t->shape[k]);
        hl += (size_t)snprintf(h + hl, cap - hl, "],\"data_offsets\":[%zu,%zu]}", dl,
                               dl + 2 * t->nelem);
        const unsigned char *src = f.data + t->begin;
        for (size_t e = 0; e < t->nelem; e++) {  // the high half of each float32
            data[dl++] = src[4 * e + 2];
            data[dl++] = src[4 * e + 3];
        }
        PETAL_ASSERT(hl < cap);
    }
    hl += (size_t)snprintf(h + hl, cap - hl, "}");
    unsigned char *file = petal_malloc(8 + hl + dl);
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)((unsigned long long)hl >> (8 * i));
    memcpy(file + 8, h, hl);
    memcpy(file + 8 + hl, data, dl);
    st_close(&f);
    char *cfg;
    size_t ncfg = read_all(&cfg, FIX "/config.json");
    const char *dir = case_dir("bf16", cfg, ncfg, (char *)file, 8 + hl + dl);
    ast_model m;
    int head;
    char **lab;
    CHECK(backbone_import_hf(&m, &head, &lab, dir, 0, &err) == PETAL_OK, "bf16 import: %s", err.msg);
    int exact = 1;
    for (int i = 0; i < ref->params.nrows && exact; i++) {
        const param_row *r = &ref->params.rows[i];
        if (!r->backbone && strncmp(r->name, "classifier.", 11)) continue;
        const float *a = param_data(&ref->params, i), *b = param_data(&m.params, i);
        for (size_t e = 0; e < r->n && exact; e++) {
            unsigned ua, ub;
            memcpy(&ua, &a[e], 4);
            memcpy(&ub, &b[e], 4);
            exact = (ua & 0xffff0000u) == ub;
        }
    }
    CHECK(exact, "BF16 checkpoint imports to the truncated float32 values");
    backbone_labels_free(lab, m.cfg.K);
    ast_model_free(&m);
    free(cfg);
    free(file);
    free(data);
    free(h);
}

static void test_broken(void) {
    char *cfg, *st;
    size_t ncfg = read_all(&cfg, FIX "/config.json"), nst = read_all(&st, FIX "/model.safetensors");
    char *c2, *s2;
    size_t n2;
    const char *dir;
    char sp[600];
    const char *W = "\"audio_spectrogram_transformer.encoder.layer.1.intermediate.dense.weight\":"
                    "{\"dtype\":\"F32\",\"shape\":";

    char from[256], to[256];
    snprintf(from, sizeof from, "%s[256,64]", W);  // same element count, transposed
    snprintf(to, sizeof to, "%s[64,256]", W);
    s2 = replaced(&n2, st, nst, from, to);
    dir = case_dir("shape", cfg, ncfg, s2, n2);
    expect_fail(dir, "wrong shape", "encoder.layer.1.intermediate.dense.weight has shape (64, 256), "
                "expected (256, 64)", "shape/model.safetensors");
    free(s2);

    s2 = replaced(&n2, st, nst, "\"classifier.dense.weight\":{\"dtype\":\"F32\"",
                  "\"classifier.dense.weight\":{\"dtype\":\"I32\"");
    dir = case_dir("dtype", cfg, ncfg, s2, n2);
    expect_fail(dir, "integer dtype", "tensor classifier.dense.weight has dtype I32", NULL);
    free(s2);

    s2 = replaced(&n2, st, nst, "\"audio_spectrogram_transformer.layernorm.weight\"",
                  "\"audio_spectrogram_transformer.layernorm.weighx\"");
    dir = case_dir("missing", cfg, ncfg, s2, n2);
    expect_fail(dir, "missing tensor", "missing tensor audio_spectrogram_transformer.layernorm.weight",
                "missing/model.safetensors");
    free(s2);

    dir = case_dir("truncated", cfg, ncfg, st, nst - 1000);
    expect_fail(dir, "truncated data", "truncated", "truncated/model.safetensors: tensor ");
    dir = case_dir("truncated_header", cfg, ncfg, st, 200);
    expect_fail(dir, "truncated header", "header length", "truncated_header/model.safetensors");
    dir = case_dir("empty", cfg, ncfg, st, 0);
    expect_fail(dir, "empty file", "too short", "empty/model.safetensors");

    s2 = replaced(&n2, st, nst, "{\"dtype\":\"F32\"", "{\"dtype\"=\"F32\"");
    dir = case_dir("bad_header", cfg, ncfg, s2, n2);
    expect_fail(dir, "bad JSON header", "bad_header/model.safetensors: header:1:", "expected ':'");
    free(s2);

    s2 = replaced(&n2, st, nst, "[0,", "[1,");  // first tensor's data range 4 bytes short
    dir = case_dir("bad_offsets", cfg, ncfg, s2, n2);
    expect_fail(dir, "bad data_offsets", "data_offsets", "bad_offsets/model.safetensors: tensor");
    free(s2);

    c2 = replaced(&n2, cfg, ncfg, "\"hidden_size\"", "\"hidden_sise\"");
    dir = case_dir("no_field", c2, n2, st, nst);
    expect_fail(dir, "missing config field", "no_field/config.json:1:1: missing field \"hidden_size\"",
                NULL);
    free(c2);

    c2 = replaced(&n2, cfg, ncfg, "\"patch_size\": 16", "\"patch_size\": 16.5");
    dir = case_dir("bad_field", c2, n2, st, nst);
    expect_fail(dir, "non-integer field", "bad_field/config.json:", "\"patch_size\" must be an integer");
    free(c2);

    c2 = replaced(&n2, cfg, ncfg, "\"hidden_act\": \"gelu\",", "\"hidden_act\": \"gelu\"");
    dir = case_dir("bad_json", c2, n2, st, nst);
    expect_fail(dir, "config syntax", "bad_json/config.json:8:3:", "expected ',' or '}'");
    free(c2);

    c2 = replaced(&n2, cfg, ncfg, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
    dir = case_dir("extra", c2, n2, st, nst);
    expect_fail(dir, "unexpected tensor", "unexpected tensor audio_spectrogram_transformer.encoder."
                "layer.1.", NULL);
    free(c2);

    c2 = replaced(&n2, cfg, ncfg, "\"max_length\": 64", "\"max_length\": 80");
    dir = case_dir("max_length", c2, n2, st, nst);
    expect_fail(dir, "config/tensor mismatch", "position_embeddings has shape (1, 62, 64), "
                "expected (1, 86, 64)", NULL);
    free(c2);

    c2 = replaced(&n2, cfg, ncfg, "\"1\": \"Dog", "\"7\": \"Dog");
    dir = case_dir("id2label", c2, n2, st, nst);
    expect_fail(dir, "bad id2label", "id2label/config.json:", "id2label entry \"7\"");
    free(c2);

    dir = case_dir("pickle", cfg, ncfg, NULL, 0);
    snprintf(sp, sizeof sp, "%s/pytorch_model.bin", dir);
    write_all(sp, "PK", 2);
    expect_fail(dir, "pickle only", "pickle/pytorch_model.bin", "not read");

    expect_fail(tmp, "no config.json", "config.json: cannot open", NULL);
    free(cfg);
    free(st);
}

int main(void) {
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    test_json();
    test_float_formats();

    expected = H5Fopen(FIX "/expected.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    PETAL_ASSERT(expected >= 0);
    static const int frames[3] = {64, 48, 100};
    ast_model m64 = {0};
    char **lab64 = NULL;
    for (int i = 0; i < 3; i++) {
        ast_model m;
        int head;
        char **labels;
        petal_err err;
        char what[64];
        snprintf(what, sizeof what, "import frames=%d", frames[i]);
        int st = backbone_import_hf(&m, &head, &labels, FIX, i ? frames[i] : 0, &err);
        CHECK(st == PETAL_OK, "%s: %s", what, err.msg);
        if (st) continue;
        CHECK(head == 1 && labels && m.cfg.head_ln == 1 && m.cfg.pool == POOL_CLS_DIST,
              "%s: classifier found", what);
        for (int k = 0; k < 5 && labels; k++)
            CHECK(!strcmp(labels[k], want_labels[k]), "label %d: %s", k, labels[k]);
        check_logits(&m, frames[i], what);
        if (i == 0) {
            m64 = m;
            lab64 = labels;
        } else {
            backbone_labels_free(labels, m.cfg.K);
            ast_model_free(&m);
        }
    }
    H5Fclose(expected);
    if (lab64) {
        test_file_round_trip(&m64, lab64);
        test_bf16(&m64);
        backbone_labels_free(lab64, 5);
        ast_model_free(&m64);
    }
    test_init_round_trip();
    test_broken();

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return check_done("import");
}
