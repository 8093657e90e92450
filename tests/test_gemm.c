// The GEMM engines and the bf16 backbone (core/gemm.h, core/bf16.c):
//  - gemm() on oneDNN and on OpenBLAS against a float64 product, for every
//    transpose, alpha, beta, bias and row strides wider than the rows;
//  - oneDNN primitives are made once per shape: a training step after the
//    first creates none;
//  - bf16 rounding (nearest even, NaN and infinity kept) and gemm_bf16w
//    against a float64 product of the rounded inputs;
//  - model.dtype bf16 on the HF fixture (tests/fixtures/hf_tiny): the logits'
//    difference from float32 and from PyTorch, LoRA gradients against float32,
//    what stays float32, a node-wide bf16 image shared by two models with the
//    float32 pages it replaces released (and still correct if read), and the
//    refusals (no bf16 instructions, the OpenBLAS engine).
#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "core/backbone.h"
#include "core/gemm.h"
#include "core/train.h"
#include "tests/check.h"

#define FIX "tests/fixtures/hf_tiny"

static uint64_t rng = 12345;
static float frand(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

// C = alpha op(A) op(B) + beta C0 + bias in float64; returns max relative error of got.
static double check_product(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                            int lda, const float *B, int ldb, float beta, const float *C0,
                            const float *got, int ldc, const float *bias) {
    double worst = 0.0, scale = 0.0;
    double *ref = malloc(sizeof(double) * (size_t)M * N);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0.0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k]) *
                     (tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n]);
            s = alpha * s + (beta != 0.0f ? beta * (double)C0[(size_t)m * ldc + n] : 0.0) +
                (bias ? bias[n] : 0.0);
            ref[(size_t)m * N + n] = s;
            scale = fmax(scale, fabs(s));
        }
    for (size_t i = 0; i < (size_t)M * N; i++) {
        size_t m = i / N, n = i % N;
        worst = fmax(worst, fabs(got[m * ldc + n] - ref[i]) / (scale > 0 ? scale : 1.0));
    }
    free(ref);
    return worst;
}

static void test_products(const char *engine) {
    petal_err err;
    PETAL_ASSERT(gemm_select(engine, &err) == PETAL_OK);
    CHECK(!strcmp(gemm_engine_name(), engine), "engine %s selected", engine);
    static const int shapes[][3] = {{1, 1, 1},     {7, 5, 3},   {33, 65, 17}, {130, 48, 257},
                                    {5, 3100, 9}, {1, 70, 600}, {90, 1, 300}};  // K > 256: row blocks
    int bad = 0, runs = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int v = 0; v < 16; v++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int ta = v & 1, tb = (v >> 1) & 1, use_bias = (v >> 2) & 1, acc = (v >> 3) & 1;
            float alpha = use_bias ? 1.0f : (acc ? 0.5f : 1.0f), beta = use_bias ? 0.0f : acc;
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;  // wider than the rows
            float *A = petal_falloc((size_t)(ta ? K : M) * lda), *B = petal_falloc((size_t)(tb ? N : K) * ldb);
            float *C = petal_falloc((size_t)M * ldc), *C0 = petal_falloc((size_t)M * ldc);
            float *bias = petal_falloc((size_t)N);
            for (size_t i = 0; i < (size_t)(ta ? K : M) * lda; i++) A[i] = frand();
            for (size_t i = 0; i < (size_t)(tb ? N : K) * ldb; i++) B[i] = frand();
            for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = C0[i] = frand();
            for (int i = 0; i < N; i++) bias[i] = frand();
            gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, use_bias ? bias : NULL);
            double e = check_product(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, C, ldc,
                                     use_bias ? bias : NULL);
            // the padding between rows is never written
            int pad_ok = 1;
            for (int m = 0; m < M; m++)
                for (int n = N; n < ldc; n++) pad_ok &= C[(size_t)m * ldc + n] == C0[(size_t)m * ldc + n];
            if (e > 1e-5 || !pad_ok) {
                bad++;
                fprintf(stderr, "  %s %dx%dx%d ta %d tb %d bias %d beta %g: err %.3g pad %d\n", engine,
                        M, N, K, ta, tb, use_bias, beta, e, pad_ok);
            }
            runs++;
            free(A), free(B), free(C), free(C0), free(bias);
        }
    CHECK(!bad, "%s: %d of %d products off", engine, bad, runs);
}

static void test_cache(void) {
    petal_err err;
    PETAL_ASSERT(gemm_select("onednn", &err) == PETAL_OK);
    float A[6 * 4], B[4 * 5], C[6 * 5];
    for (int i = 0; i < 24; i++) A[i] = frand();
    for (int i = 0; i < 20; i++) B[i] = frand();
    gemm(0, 0, 6, 5, 4, 1.0f, A, 4, B, 5, 0.0f, C, 5, NULL);
    long made = gemm_primitives_created;
    gemm(0, 0, 6, 5, 4, 1.0f, A, 4, B, 5, 0.0f, C, 5, NULL);
    CHECK(gemm_primitives_created == made, "the same shape reuses its primitive");
    gemm(0, 0, 6, 5, 4, 1.0f, A, 4, B, 5, 1.0f, C, 5, NULL);
    CHECK(gemm_primitives_created == made + 1, "beta 1 is another primitive");

    // Training steps: every primitive exists after the first one.
    ast_config c;
    ast_method meth;
    PETAL_ASSERT(ast_config_preset(&c, "tiny", 48, 4, &err) == PETAL_OK);
    PETAL_ASSERT(ast_method_parse(&meth, "adapter_pfeiffer", &err) == PETAL_OK);
    PETAL_ASSERT(ast_method_set(&meth, "lora.rank", "4", &err) == PETAL_OK);
    ast_model m;
    PETAL_ASSERT(ast_model_init(&m, &c, &meth, 4, &err) == PETAL_OK);
    ast_init_weights(&m, 3, 0);
    float *x = petal_falloc((size_t)4 * c.frames * c.F);
    int y[4];
    synthetic_features(x, y, 4, c.frames, c.F, c.K, 5);
    long after_first = 0;
    for (int s = 0; s < 3; s++) {
        ast_forward(&m, x, y, 4, NULL);
        ast_backward(&m, y, 4);
        if (!s) after_first = gemm_primitives_created;
    }
    CHECK(gemm_primitives_created == after_first,
          "training steps after the first create no primitive (%ld more)",
          gemm_primitives_created - after_first);
    free(x);
    ast_model_free(&m);
}

static float bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_bf16_rounding(void) {
    struct { uint32_t in; uint16_t out; } v[] = {
        {0x3f800000u, 0x3f80},  // 1
        {0x3f808000u, 0x3f80},  // 1 + 2^-8: halfway, to even (down)
        {0x3f818000u, 0x3f82},  // halfway, to even (up)
        {0x3f808001u, 0x3f81},  // just above halfway
        {0x7f7fffffu, 0x7f80},  // the largest float rounds to infinity
        {0x7f800000u, 0x7f80},  // infinity
        {0xff800000u, 0xff80},  // -infinity
        {0x80000000u, 0x8000},  // -0
        {0x00400000u, 0x0000},  // a denormal flushes to 0
        {0x80400000u, 0x8000},  // ... of its sign
        {0x00800000u, 0x0080},  // the smallest normal stays
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        float f = bits(v[i].in);
        bf16 b;
        bf16_from_f32(&b, &f, 1);
        ok &= b == v[i].out;
    }
    CHECK(ok, "bf16 rounding: nearest even, infinities kept, denormals to zero");
    // A long array (the vector path and the threads) gives the same bits as one value at a time.
    size_t n = 200003;
    float *f = petal_falloc(n);
    bf16 *all = malloc(n * sizeof *all), one;
    for (size_t i = 0; i < n; i++) f[i] = frand() * (i % 5 ? 1.0f : 1e-39f);
    f[77] = bits(0x3f808000u), f[78] = bits(0x7f800001u);
    bf16_from_f32(all, f, n);
    int same = 1;
    for (size_t i = 0; i < n; i++) {
        bf16_from_f32(&one, f + i, 1);
        same &= one == all[i];
    }
    CHECK(same, "bf16 rounding: arrays as single values");
    free(f), free(all);
    float nan = bits(0x7f800001u);  // a NaN whose payload is only in the low bits
    bf16 b;
    bf16_from_f32(&b, &nan, 1);
    CHECK(isnan(bf16_to_f32(b)), "a NaN stays a NaN");
}

static void test_bf16_product(void) {
    petal_err err;
    PETAL_ASSERT(gemm_select("onednn", &err) == PETAL_OK);
    int M = 37, N = 70, K = 129;
    for (int v = 0; v < 4; v++) {
        int ta = v & 1, tb = v >> 1;
        int lda = ta ? M : K + 5, ldb = tb ? K : N;
        float *A = petal_falloc((size_t)(ta ? K : M) * lda), *B = petal_falloc((size_t)K * N);
        float *Ar = petal_falloc((size_t)(ta ? K : M) * lda), *Br = petal_falloc((size_t)K * N);
        float *C = petal_falloc((size_t)M * N), *C0 = petal_falloc((size_t)M * N), *bias = petal_falloc(N);
        bf16 *B16 = malloc(sizeof(bf16) * (size_t)K * N), t;
        for (size_t i = 0; i < (size_t)(ta ? K : M) * lda; i++) {
            A[i] = frand();
            bf16_from_f32(&t, &A[i], 1);
            Ar[i] = bf16_to_f32(t);
        }
        for (size_t i = 0; i < (size_t)K * N; i++) B[i] = frand();
        bf16_from_f32(B16, B, (size_t)K * N);
        for (size_t i = 0; i < (size_t)K * N; i++) Br[i] = bf16_to_f32(B16[i]);
        for (int i = 0; i < N; i++) bias[i] = frand();
        for (size_t i = 0; i < (size_t)M * N; i++) C[i] = C0[i] = frand();
        float beta = ta ? 1.0f : 0.0f;
        const float *bb = ta ? NULL : bias;
        gemm_bf16w(ta, tb, M, N, K, A, lda, B16, ldb, beta, C, N, bb);
        double e = check_product(ta, tb, M, N, K, 1.0f, Ar, lda, Br, ldb, beta, C0, C, N, bb);
        // float32 accumulation of exact bf16 products: float32 rounding only
        CHECK(e < 1e-5, "bf16 product ta %d tb %d: error %.3g against the rounded inputs", ta, tb, e);
        double e32 = check_product(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C0, C, N, bb);
        CHECK(e32 > 1e-5 && e32 < 2e-2, "bf16 product ta %d tb %d: %.3g from the float32 product",
              ta, tb, e32);
        free(A), free(B), free(Ar), free(Br), free(C), free(C0), free(bias), free(B16);
    }
}

// ---- the bf16 backbone on the HF fixture -----------------------------------------------

static double max_abs(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
    return sqrt(d / (s > 0 ? s : 1));
}

static char tmp[] = "/tmp/petal_test_gemm_XXXXXX";

// The HF fixture as a backbone file, loaded into a model of `method` (batch B).
static void load_hf(ast_model *m, const char *file, const char *method, int B, const char *share) {
    petal_err err;
    ast_config c;
    PETAL_ASSERT(backbone_read_config(&c, NULL, file, &err) == PETAL_OK);
    ast_method meth;
    PETAL_ASSERT(ast_method_parse(&meth, method, &err) == PETAL_OK);
    PETAL_ASSERT(ast_model_init(m, &c, &meth, B, &err) == PETAL_OK);
    ast_init_weights(m, 9, 1);
    petal_err warn;
    PETAL_ASSERT(backbone_load(m, file, 1, share, &warn, &err) == PETAL_OK);
}

static void test_bf16_backbone(void) {
    petal_err err;
    PETAL_ASSERT(gemm_select("onednn", &err) == PETAL_OK);
    const char *isa;
    if (!gemm_bf16_supported(&isa)) {
        printf("  bf16: this CPU has %s; only the refusal is tested\n", isa);
        ast_model m;
        int head;
        PETAL_ASSERT(backbone_import_hf(&m, &head, NULL, FIX, 0, &err) == PETAL_OK);
        CHECK(ast_model_use_bf16(&m, NULL, NULL, 0, &err) == PETAL_EINPUT &&
                  strstr(err.msg, "AVX512-BF16"),
              "refused without bf16 instructions: %s", err.msg);
        ast_model_free(&m);
        return;
    }
    // The fixture's model and PyTorch's logits on PyTorch's features (64 frames).
    ast_model hf;
    int head;
    char **labels = NULL;
    PETAL_ASSERT(backbone_import_hf(&hf, &head, &labels, FIX, 0, &err) == PETAL_OK);
    char file[300];
    snprintf(file, sizeof file, "%s/hf.h5", tmp);
    PETAL_ASSERT(backbone_save(file, &hf, 1, labels, &err) == PETAL_OK);
    backbone_labels_free(labels, hf.cfg.K);
    int T = hf.cfg.frames, K = hf.cfg.K;
    hid_t f = H5Fopen(FIX "/expected.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    PETAL_ASSERT(f >= 0);
    double want[16];
    float *x = petal_falloc((size_t)T * hf.cfg.F);
    hid_t d = H5Dopen2(f, "T64/logits", H5P_DEFAULT);
    PETAL_ASSERT(d >= 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, want) >= 0);
    H5Dclose(d);
    d = H5Dopen2(f, "T64/features", H5P_DEFAULT);
    PETAL_ASSERT(d >= 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    ast_model_free(&hf);

    ast_model m32, m16;
    load_hf(&m32, file, "linear", 1, NULL);
    load_hf(&m16, file, "linear", 1, NULL);
    m32.training = m16.training = 0;
    CHECK(ast_model_use_bf16(&m16, NULL, NULL, 0, &err) == PETAL_OK, "bf16: %s", err.msg);
    CHECK(m16.w16 && m16.w.layer[0].qkv_w16 && m16.w.layer[1].fc2_w16 && !m16.w16_mapped,
          "frozen GEMM weights held in bf16 (privately without a cache folder)");
    float l32[16] = {0}, l16[16] = {0}, ltorch[16] = {0};
    PETAL_ASSERT(K <= 16);
    ast_infer(&m32, x, NULL, 1, NULL);
    memcpy(l32, m32.a.logits, sizeof(float) * K);
    ast_infer(&m16, x, NULL, 1, NULL);
    memcpy(l16, m16.a.logits, sizeof(float) * K);
    for (int k = 0; k < K; k++) ltorch[k] = (float)want[k];
    double d32 = max_abs(l32, ltorch, K), d16 = max_abs(l16, l32, K), d16t = max_abs(l16, ltorch, K);
    double span = 0;
    for (int k = 0; k < K; k++) span = fmax(span, fabs(ltorch[k]));
    printf("  HF fixture logits (max |logit| %.3f): fp32 vs PyTorch %.2e, bf16 vs fp32 %.2e, "
           "bf16 vs PyTorch %.2e\n", span, d32, d16, d16t);
    CHECK(d32 <= 1e-4, "fp32 logits vs PyTorch %.3g", d32);
    CHECK(d16 > 0, "bf16 changes the logits (its GEMMs ran)");
    CHECK(d16 <= 2e-2 * fmax(span, 1.0), "bf16 logits within 2%% of the logit range of fp32: %.3g", d16);

    // LoRA through the bf16 backbone: trainable gradients near float32's, in float32.
    ast_model a32, a16;
    load_hf(&a32, file, "lora", 2, NULL);
    load_hf(&a16, file, "lora", 2, NULL);
    ast_init_weights(&a32, 4, 1);  // nonzero LoRA up projections (same in both)
    ast_init_weights(&a16, 4, 1);
    for (int l = 0; l < a32.cfg.L; l++)
        for (int t = 0; t < 4; t++)
            if (a32.w.layer[l].lora_b[t]) {
                size_t n = (size_t)a32.cfg.C * a32.method.lora.rank;
                for (size_t i = 0; i < n; i++)
                    a32.w.layer[l].lora_b[t][i] = a16.w.layer[l].lora_b[t][i] = 0.01f * frand();
            }
    PETAL_ASSERT(ast_model_use_bf16(&a16, NULL, NULL, 0, &err) == PETAL_OK);
    CHECK(a16.params.ngrad == a32.params.ngrad && a16.params.ndata == a32.params.ndata,
          "gradients and parameters stay float32, same sizes");
    float *x2 = petal_falloc((size_t)2 * T * a32.cfg.F);
    memcpy(x2, x, sizeof(float) * T * a32.cfg.F);
    for (size_t i = 0; i < (size_t)T * a32.cfg.F; i++) x2[(size_t)T * a32.cfg.F + i] = -0.5f * x[i];
    int y[2] = {1, 3};
    double loss32 = ast_forward(&a32, x2, y, 2, NULL);
    ast_backward(&a32, y, 2);
    double loss16 = ast_forward(&a16, x2, y, 2, NULL);
    ast_backward(&a16, y, 2);
    double g = rel_l2(a16.params.grad, a32.params.grad, a32.params.ngrad);
    printf("  LoRA step: loss fp32 %.6f bf16 %.6f, trainable gradients rel. L2 %.2e\n", loss32,
           loss16, g);
    CHECK(fabs(loss16 - loss32) <= 1e-2 * fabs(loss32), "bf16 loss near float32's");
    CHECK(g > 0 && g <= 5e-2, "bf16 trainable gradients within 5%% (rel. L2 %.3g)", g);
    free(x2);
    ast_model_free(&a32);
    ast_model_free(&a16);

    // Full fine-tuning trains every GEMM weight: nothing to hold in bf16.
    ast_model fl;
    load_hf(&fl, file, "full", 1, NULL);
    CHECK(ast_model_use_bf16(&fl, NULL, NULL, 0, &err) == PETAL_OK && !fl.w16,
          "full fine-tuning keeps float32 weights");
    ast_model_free(&fl);

    // Node-wide: two models map one bf16 image; the float32 pages it replaces are
    // released, and read back the same if anything touches them.
    char share[300];
    snprintf(share, sizeof share, "%s/share", tmp);
    ast_model s1, s2;
    load_hf(&s1, file, "linear", 1, share);
    load_hf(&s2, file, "linear", 1, share);
    char warn[1200], orphan[400];
    snprintf(orphan, sizeof orphan, "%s/0123456789abcdef.img.bf16", share);  // its .img is gone
    FILE *o = fopen(orphan, "w");
    PETAL_ASSERT(o);
    fclose(o);
    CHECK(ast_model_use_bf16(&s1, share, warn, sizeof warn, &err) == PETAL_OK && !warn[0],
          "shared bf16: %s %s", err.msg, warn);
    CHECK(ast_model_use_bf16(&s2, share, warn, sizeof warn, &err) == PETAL_OK && !warn[0],
          "shared bf16 (second): %s %s", err.msg, warn);
    CHECK(s1.w16_mapped && s2.w16_mapped && s1.n16 == m16.n16 &&
              !memcmp(s1.w16, m16.w16, m16.n16 * sizeof *m16.w16) &&
              !memcmp(s2.w16, m16.w16, m16.n16 * sizeof *m16.w16),
          "both map the image, equal to a private bf16 copy");
    CHECK(access(orphan, F_OK) != 0, "a bf16 image whose float32 image is gone is removed");
    CHECK(!memcmp(s2.params.data, m32.params.data, m32.params.ndata * sizeof(float)),
          "released float32 pages read back unchanged");
    s2.training = 0;
    ast_infer(&s2, x, NULL, 1, NULL);
    CHECK(!memcmp(s2.a.logits, l16, sizeof(float) * K), "shared bf16 logits equal private bf16's");
    ast_model_free(&s1);
    ast_model_free(&s2);
    // BitFit trains the biases between the weights: still the shared image.
    load_hf(&s1, file, "bitfit", 1, share);
    CHECK(ast_model_use_bf16(&s1, share, warn, sizeof warn, &err) == PETAL_OK && !warn[0] &&
              s1.w16_mapped && !memcmp(s1.w16, m16.w16, m16.n16 * sizeof *m16.w16),
          "BitFit maps the shared bf16 image: %s", warn);
    ast_model_free(&s1);

    // Refusals: a CPU without bf16 instructions; the OpenBLAS engine.
    ast_model r;
    load_hf(&r, file, "linear", 1, NULL);
    bf16_force_unsupported = 1;
    CHECK(ast_model_use_bf16(&r, NULL, NULL, 0, &err) == PETAL_EINPUT &&
              strstr(err.msg, "AVX512-BF16 or AMX-BF16") && !r.w16,
          "refused without bf16 instructions: %s", err.msg);
    bf16_force_unsupported = 0;
    PETAL_ASSERT(gemm_select("openblas", &err) == PETAL_OK);
    CHECK(ast_model_use_bf16(&r, NULL, NULL, 0, &err) == PETAL_EINPUT && strstr(err.msg, "oneDNN"),
          "refused on OpenBLAS: %s", err.msg);
    PETAL_ASSERT(gemm_select("onednn", &err) == PETAL_OK);
    ast_model_free(&r);
    ast_model_free(&m32);
    ast_model_free(&m16);
    free(x);
}

int main(void) {
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    test_products("onednn");
    test_products("openblas");
    test_cache();
    test_bf16_rounding();
    test_bf16_product();
    test_bf16_backbone();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return check_done("gemm");
}
