// Finite-difference checks for every backward function of the core, on tiny
// shapes, plus the whole model per method. Built a second time with
// -DPETAL_CANARY (a deliberately broken backward), where it must fail.
#include <string.h>

#include "core/adamw.h"
#include "core/ast.h"
#include "tests/check.h"
#include "tests/gradcheck.h"

#define TOL 1e-2  // float forward, double objective, eps 1e-2: errors ~1e-4
static petal_rng rng;

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * petal_rng_normal(&rng));
}

// Objective = sum(out * R) in double, so d objective / d out = R.
static double dot(const float *out, const float *r, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * r[i];
    return s;
}

// ---- linear -------------------------------------------------------------------
typedef struct { float *out, *inp, *w, *b, *r; int N, IC, OC; } lin_ctx;
static double lin_obj(void *p) {
    lin_ctx *c = p;
    linear_forward(c->out, c->inp, c->w, c->b, c->N, c->IC, c->OC);
    return dot(c->out, c->r, (size_t)c->N * c->OC);
}
static void check_linear(void) {
    int N = 5, IC = 7, OC = 6;
    lin_ctx c = {petal_falloc(N * OC), petal_falloc(N * IC), petal_falloc(OC * IC),
                 petal_falloc(OC), petal_falloc(N * OC), N, IC, OC};
    fill(c.inp, N * IC, 1), fill(c.w, OC * IC, 1), fill(c.b, OC, 1), fill(c.r, N * OC, 1);
    float *di = petal_falloc(N * IC), *dw = petal_falloc(OC * IC), *db = petal_falloc(OC);
    linear_backward(di, dw, db, c.r, c.inp, c.w, N, IC, OC);
    CHECK(fd_relerr(lin_obj, &c, c.inp, di, N * IC, 1e-2f, 1000) < TOL, "linear dinp");
    CHECK(fd_relerr(lin_obj, &c, c.w, dw, OC * IC, 1e-2f, 1000) < TOL, "linear dweight");
    CHECK(fd_relerr(lin_obj, &c, c.b, db, OC, 1e-2f, 1000) < TOL, "linear dbias");
    // Parameter gradients accumulate: a second backward doubles them.
    linear_backward(NULL, dw, db, c.r, c.inp, c.w, N, IC, OC);
    float *dw1 = petal_falloc(OC * IC);
    linear_backward(NULL, dw1, NULL, c.r, c.inp, c.w, N, IC, OC);
    double e = 0;
    for (int i = 0; i < OC * IC; i++) e = fmax(e, fabs(dw[i] - 2 * dw1[i]));
    CHECK(e < 1e-5, "linear dweight accumulates (max diff %g)", e);
    free(c.out), free(c.inp), free(c.w), free(c.b), free(c.r), free(di), free(dw), free(db),
        free(dw1);
}

// ---- layernorm ------------------------------------------------------------------
typedef struct { float *out, *mean, *rstd, *inp, *w, *b, *r; int N, C; } ln_ctx;
static double ln_obj(void *p) {
    ln_ctx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, 1e-5f, c->N, c->C);
    return dot(c->out, c->r, (size_t)c->N * c->C);
}
static void check_layernorm(void) {
    int N = 4, C = 16;
    ln_ctx c = {petal_falloc(N * C), petal_falloc(N), petal_falloc(N), petal_falloc(N * C),
                petal_falloc(C), petal_falloc(C), petal_falloc(N * C), N, C};
    fill(c.inp, N * C, 1), fill(c.w, C, 1), fill(c.b, C, 1), fill(c.r, N * C, 1);
    ln_obj(&c);
    float *di = petal_falloc(N * C), *dw = petal_falloc(C), *db = petal_falloc(C);
    layernorm_backward(di, dw, db, c.r, c.inp, c.w, c.mean, c.rstd, N, C);
    CHECK(fd_relerr(ln_obj, &c, c.inp, di, N * C, 1e-2f, 1000) < TOL, "layernorm dinp");
    CHECK(fd_relerr(ln_obj, &c, c.w, dw, C, 1e-2f, 1000) < TOL, "layernorm dweight");
    CHECK(fd_relerr(ln_obj, &c, c.b, db, C, 1e-2f, 1000) < TOL, "layernorm dbias");
    free(c.out), free(c.mean), free(c.rstd), free(c.inp), free(c.w), free(c.b), free(c.r),
        free(di), free(dw), free(db);
}

// ---- gelu -------------------------------------------------------------------------
typedef struct { float *out, *inp, *r; int n; } gelu_ctx;
static double gelu_obj(void *p) {
    gelu_ctx *c = p;
    gelu_forward(c->out, c->inp, c->n);
    return dot(c->out, c->r, c->n);
}
static void check_gelu(void) {
    int n = 64;
    gelu_ctx c = {petal_falloc(n), petal_falloc(n), petal_falloc(n), n};
    fill(c.inp, n, 2), fill(c.r, n, 1);
    float *di = petal_falloc(n);
    gelu_backward(di, c.r, c.inp, n);
    CHECK(fd_relerr(gelu_obj, &c, c.inp, di, n, 1e-2f, 1000) < TOL, "gelu dinp");
    free(c.out), free(c.inp), free(c.r), free(di);
}

// ---- attention ----------------------------------------------------------------------
// Flash-style: the forward keeps only the row log-sum-exp and the backward
// recomputes the probabilities. Checked with and without prefix keys/values,
// with one query block and with several (attention_block_rows forced small).
typedef struct { float *out, *lse, *qkv, *pk, *pv, *r, *scratch; int B, T, C, NH, PK; } att_ctx;
static double att_obj(void *p) {
    att_ctx *c = p;
    int C3 = 3 * c->C;
    attention_forward(c->out, c->lse, c->scratch, 1, c->qkv, c->qkv + c->C, c->qkv + 2 * c->C,
                      c->pk, c->pv, C3, C3, c->PK, c->B, c->T, c->C, c->NH);
    return dot(c->out, c->r, (size_t)c->B * c->T * c->C);
}
static void check_attention_case(int PK, int block_rows, int T, int C) {
    int B = 2, NH = 2;
    attention_block_rows = block_rows;
    att_ctx c = {petal_falloc(B * T * C), petal_falloc(B * NH * T), petal_falloc(B * T * 3 * C),
                 PK ? petal_falloc(PK * C) : NULL, PK ? petal_falloc(PK * C) : NULL,
                 petal_falloc(B * T * C), petal_falloc(attention_scratch_floats(T, T + PK, C / NH)),
                 B, T, C, NH, PK};
    fill(c.qkv, B * T * 3 * C, 1), fill(c.r, B * T * C, 1);
    if (PK) fill(c.pk, PK * C, 1), fill(c.pv, PK * C, 1);
    att_obj(&c);
    // The kept statistics are the log-sum-exp of each row of scaled scores.
    double worst = 0.0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                int HS = C / NH;
                double mx = -1e300, s[64];
                PETAL_ASSERT(T + PK <= 64);
                for (int j = 0; j < T + PK; j++) {
                    const float *kr = j < T ? c.qkv + ((size_t)b * T + j) * 3 * C + C
                                            : c.pk + (size_t)(j - T) * C;
                    double d = 0;
                    for (int e = 0; e < HS; e++)
                        d += (double)c.qkv[((size_t)b * T + i) * 3 * C + h * HS + e] * kr[h * HS + e];
                    s[j] = d / sqrt((double)HS);
                    mx = fmax(mx, s[j]);
                }
                double z = 0;
                for (int j = 0; j < T + PK; j++) z += exp(s[j] - mx);
                worst = fmax(worst, fabs(c.lse[((size_t)b * NH + h) * T + i] - (mx + log(z))));
            }
    CHECK(worst < 1e-5, "attention T %d HS %d PK %d blocks of %d: row log-sum-exp (max err %g)",
          T, C / NH, PK, block_rows, worst);
    float *dqkv = petal_falloc(B * T * 3 * C);
    float *dpk = PK ? petal_falloc(B * PK * C) : NULL, *dpv = PK ? petal_falloc(B * PK * C) : NULL;
    attention_backward(dqkv, dqkv + C, dqkv + 2 * C, dpk, dpv, c.scratch, 1, c.r, c.qkv, c.qkv + C,
                       c.qkv + 2 * C, c.pk, c.pv, c.lse, 3 * C, 3 * C, PK, B, T, C, NH);
    CHECK(fd_relerr(att_obj, &c, c.qkv, dqkv, B * T * 3 * C, 1e-2f, 1000) < TOL,
          "attention T %d HS %d PK %d blocks of %d: dqkv", T, C / NH, PK, block_rows);
    if (PK) {
        // per-example prefix gradients, summed over the batch
        for (int i = 0; i < PK * C; i++)
            for (int b = 1; b < B; b++) dpk[i] += dpk[b * PK * C + i], dpv[i] += dpv[b * PK * C + i];
        CHECK(fd_relerr(att_obj, &c, c.pk, dpk, PK * C, 1e-2f, 1000) < TOL,
              "attention T %d HS %d PK %d blocks of %d: dprefix_k", T, C / NH, PK, block_rows);
        CHECK(fd_relerr(att_obj, &c, c.pv, dpv, PK * C, 1e-2f, 1000) < TOL,
              "attention T %d HS %d PK %d blocks of %d: dprefix_v", T, C / NH, PK, block_rows);
    }
    attention_block_rows = 0;
    free(c.out), free(c.lse), free(c.qkv), free(c.pk), free(c.pv), free(c.r), free(c.scratch),
        free(dqkv), free(dpk), free(dpv);
}
static void check_attention(void) {
    // HS 4: the cblas path; HS 16 and 64: the AVX-512 kernels where built, with
    // 19 + 3 keys crossing a 16-row transpose block and a 6-row tile.
    check_attention_case(0, 0, 7, 8);
    check_attention_case(0, 3, 7, 8);  // blocks of 3, 3, 1 query rows
    check_attention_case(3, 0, 7, 8);
    check_attention_case(3, 2, 7, 8);
    check_attention_case(0, 0, 19, 32);
    check_attention_case(3, 7, 19, 32);
    check_attention_case(0, 0, 19, 128);
    check_attention_case(3, 5, 19, 128);
}

// ---- patch embedding ------------------------------------------------------------------
typedef struct { float *x, *cols, *pw, *pb, *cls, *dist, *pos, *r; int B, NP, PP, C; } emb_ctx;
static double emb_obj(void *p) {
    emb_ctx *c = p;
    embed_forward(c->x, c->cols, c->pw, c->pb, c->cls, c->dist, NULL, c->pos, c->B, c->NP, 0, c->PP,
                  c->C);
    return dot(c->x, c->r, (size_t)c->B * (c->NP + 2) * c->C);
}
static void check_embed(void) {
    // fbank 20 frames x 18 bins, 16x16 patches, strides (2, 4): 2 x 2 patches.
    int B = 2, frames = 20, F = 18, P = 16, fs = 2, ts = 4, C = 4;
    int NP = ((F - P) / fs + 1) * ((frames - P) / ts + 1), PP = P * P, T = NP + 2;
    float *fb = petal_falloc(B * frames * F);
    for (int i = 0; i < B * frames * F; i++) fb[i] = (float)i;
    emb_ctx c = {petal_falloc(B * T * C), petal_falloc(B * NP * PP), petal_falloc(C * PP),
                 petal_falloc(C), petal_falloc(C), petal_falloc(C), petal_falloc(T * C),
                 petal_falloc(B * T * C), B, NP, PP, C};
    patch_im2col(c.cols, fb, B, frames, F, P, fs, ts);
    // Patch p = (fi, ti), pixel (kf, kt) reads frame ti*ts+kt, bin fi*fs+kf.
    int td = (frames - P) / ts + 1, ok = 1;
    for (int b = 0; b < B; b++)
        for (int p = 0; p < NP; p++)
            for (int kf = 0; kf < P; kf++)
                for (int kt = 0; kt < P; kt++) {
                    int fi = p / td, ti = p % td;
                    float want = (float)(b * frames * F + (ti * ts + kt) * F + fi * fs + kf);
                    ok &= c.cols[((size_t)b * NP + p) * PP + kf * P + kt] == want;
                }
    CHECK(ok, "im2col reads the transposed (F x frames) image f-major");
    fill(c.cols, B * NP * PP, 0.3f), fill(c.pw, C * PP, 0.3f), fill(c.pb, C, 1),
        fill(c.cls, C, 1), fill(c.dist, C, 1), fill(c.pos, T * C, 1), fill(c.r, B * T * C, 1);
    float *dpw = petal_falloc(C * PP), *dpb = petal_falloc(C), *dcls = petal_falloc(C),
          *ddist = petal_falloc(C), *dpos = petal_falloc(T * C);
    embed_backward(dpw, dpb, dcls, ddist, NULL, dpos, c.r, c.cols, B, NP, 0, PP, C);
    CHECK(fd_relerr(emb_obj, &c, c.pw, dpw, C * PP, 1e-2f, 200) < TOL, "embed dpatch_w");
    CHECK(fd_relerr(emb_obj, &c, c.pb, dpb, C, 1e-2f, 200) < TOL, "embed dpatch_b");
    CHECK(fd_relerr(emb_obj, &c, c.cls, dcls, C, 1e-2f, 200) < TOL, "embed dcls");
    CHECK(fd_relerr(emb_obj, &c, c.dist, ddist, C, 1e-2f, 200) < TOL, "embed ddist");
    CHECK(fd_relerr(emb_obj, &c, c.pos, dpos, T * C, 1e-2f, 200) < TOL, "embed dpos");
    free(fb), free(c.x), free(c.cols), free(c.pw), free(c.pb), free(c.cls), free(c.dist),
        free(c.pos), free(c.r), free(dpw), free(dpb), free(dcls), free(ddist), free(dpos);
}

// ---- pooling and cross-entropy ----------------------------------------------------------
typedef struct { float *pooled, *x, *r; int t0, t1, B, T, C; } pool_ctx;
static double pool_obj(void *p) {
    pool_ctx *c = p;
    pool_forward(c->pooled, c->x, c->t0, c->t1, c->B, c->T, c->C);
    return dot(c->pooled, c->r, (size_t)c->B * c->C);
}
typedef struct { float *probs, *logits; int *labels; int B, K; } xent_ctx;
static double xent_obj(void *p) {
    xent_ctx *c = p;
    return crossentropy_forward(c->probs, NULL, c->logits, c->labels, c->B, c->K);
}
static void check_pool_loss(void) {
    int B = 3, T = 5, C = 4, K = 4;
    int ranges[3][2] = {{0, T}, {0, 1}, {1, 4}};
    for (int pl = 0; pl < 3; pl++) {
        pool_ctx c = {petal_falloc(B * C), petal_falloc(B * T * C), petal_falloc(B * C),
                      ranges[pl][0], ranges[pl][1], B, T, C};
        fill(c.x, B * T * C, 1), fill(c.r, B * C, 1);
        float *dx = petal_falloc(B * T * C);
        pool_backward(dx, c.r, c.t0, c.t1, B, T, C);
        CHECK(fd_relerr(pool_obj, &c, c.x, dx, B * T * C, 1e-2f, 1000) < TOL, "pool [%d, %d) dx",
              c.t0, c.t1);
        free(c.pooled), free(c.x), free(c.r), free(dx);
    }
    int labels[3] = {0, 3, 1};
    xent_ctx c = {petal_falloc(B * K), petal_falloc(B * K), labels, B, K};
    fill(c.logits, B * K, 2);
    xent_obj(&c);
    float *dl = petal_falloc(B * K);
    crossentropy_backward(dl, c.probs, labels, B, K);
    CHECK(fd_relerr(xent_obj, &c, c.logits, dl, B * K, 1e-2f, 1000) < TOL, "crossentropy");
    free(c.probs), free(c.logits), free(dl);
}

// ---- the whole model, per method ----------------------------------------------------------
typedef struct { ast_model *m; const float *fb; const int *labels; int B; } model_ctx;
static double model_obj(void *p) {
    model_ctx *c = p;
    return ast_forward(c->m, c->fb, c->labels, c->B, NULL);
}
static void check_model(void) {
    // Two layers, 2 x 2 patches: every tensor of the model is exercised.
    ast_config cfg = {.C = 16, .L = 2, .NH = 2, .MLP = 32, .F = 20, .frames = 26, .patch = 16,
                      .fstride = 4, .tstride = 10, .K = 3, .pool = POOL_ALL, .ln_eps = 1e-12f};
    int B = 2, labels[2] = {2, 0};
    petal_err err;
    float *fb = petal_falloc((size_t)B * cfg.frames * cfg.F);
    fill(fb, (size_t)B * cfg.frames * cfg.F, 1);
    const char *methods[] = {"full", "linear", "bitfit"};
    ast_model full;
    for (int mi = 0; mi < 3; mi++) {
        for (int pl = 0; pl < 3; pl++) {
            ast_method meth;
            CHECK(ast_method_parse(&meth, methods[mi], &err) == PETAL_OK, "parse %s", methods[mi]);
            cfg.pool = (ast_pool)pl;
            ast_model m;
            CHECK(ast_model_init(&m, &cfg, &meth, B, &err) == PETAL_OK, "init: %s", err.msg);
            // Non-trivial weights so attention is not uniform and LN params matter.
            petal_rng_seed(&rng, 7 + pl);
            fill(m.params.data, m.params.ndata, 0.3f);
            model_ctx c = {&m, fb, labels, B};
            model_obj(&c);
            ast_backward(&m, labels, B);
            for (int i = 0; i < m.params.nrows; i++) {
                float *g = param_grad(&m.params, i);
                if (!g) continue;
                float *keep = petal_falloc(m.params.rows[i].n);
                memcpy(keep, g, m.params.rows[i].n * sizeof *g);
                double e = fd_relerr(model_obj, &c, param_data(&m.params, i), keep,
                                     m.params.rows[i].n, 1e-2f, 12);
                CHECK(e < 2 * TOL, "model %s pool %s: %s rel err %.3g", methods[mi],
                      ast_pool_name(cfg.pool), m.params.rows[i].name, e);
                free(keep);
            }
            if (mi == 0 && pl == 0) {
                full = m;  // kept to compare the other methods' gradients with
                continue;
            }
            if (pl == 0) {
                // The same weights give the same gradients for the rows a method trains,
                // whatever its backward skips below them.
                double worst = 0.0;
                for (int i = 0; i < m.params.nrows; i++) {
                    float *g = param_grad(&m.params, i), *gf = param_grad(&full.params, i);
                    for (size_t k = 0; g && k < m.params.rows[i].n; k++)
                        worst = fmax(worst, fabs(g[k] - gf[k]) / (fabs(gf[k]) + 1e-3));
                }
                CHECK(worst < 1e-4, "%s gradients equal full's on its rows (worst %g)",
                      methods[mi], worst);
            }
            ast_model_free(&m);
        }
    }
    ast_model_free(&full);
    free(fb);
}

// ---- what a forward keeps ------------------------------------------------------------------
// ast_infer keeps nothing yet gives ast_forward's logits bit for bit; linear
// probing keeps no layer at all; the backward refuses to run after a forward
// that kept nothing (m.kept), and a training forward after ast_infer still
// gives the gradients of a fresh model.
static void check_keep(void) {
    ast_config cfg = {.C = 16, .L = 2, .NH = 2, .MLP = 32, .F = 20, .frames = 26, .patch = 16,
                      .fstride = 4, .tstride = 10, .K = 3, .pool = POOL_ALL, .ln_eps = 1e-12f};
    int B = 2, labels[2] = {1, 2};
    petal_err err;
    float *fb = petal_falloc((size_t)B * cfg.frames * cfg.F);
    fill(fb, (size_t)B * cfg.frames * cfg.F, 1);
    const char *methods[] = {"full", "linear", "bitfit", "lora", "adapter_houlsby",
                             "conformer", "prefix", "prompt_deep", "dense_moa", "soft_moa"};
    const char *sets[][2] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}, {"lora.rank", "2"},
                             {"adapter.dim", "4"}, {"adapter.kernel", "3"}, {"prefix.tokens", "4"},
                             {"prompt.tokens", "3"}, {"moa.dim", "3"}, {"moa.dim", "3"}};
    size_t kept_full = 0;
    for (int k = 0; k < (int)(sizeof methods / sizeof methods[0]); k++) {
        ast_method meth;
        ast_model m, fresh;
        CHECK(ast_method_parse(&meth, methods[k], &err) == PETAL_OK, "parse %s", methods[k]);
        if (sets[k][0]) ast_method_set(&meth, sets[k][0], sets[k][1], &err);
        if (meth.adapter.block == BLOCK_CONFORMER) ast_method_set(&meth, "adapter.dim", "4", &err);
        PETAL_ASSERT(ast_model_init(&m, &cfg, &meth, B, &err) == PETAL_OK);
        PETAL_ASSERT(ast_model_init(&fresh, &cfg, &meth, B, &err) == PETAL_OK);
        petal_rng_seed(&rng, 11);
        fill(m.params.data, m.params.ndata, 0.3f);
        for (int i = 0; i < m.params.nrows; i++)  // BatchNorm running variance stays positive
            if (strstr(m.params.rows[i].name, "running_var"))
                for (size_t j = 0; j < m.params.rows[i].n; j++) param_data(&m.params, i)[j] = 1.0f;
        memcpy(fresh.params.data, m.params.data, m.params.ndata * sizeof(float));
        float logits[6];
        double l1 = ast_forward(&m, fb, labels, B, NULL);
        memcpy(logits, m.a.logits, sizeof logits);
        CHECK(m.kept, "%s: a training forward keeps activations", methods[k]);
        double l2 = ast_infer(&m, fb, labels, B, NULL);
        CHECK(!memcmp(logits, m.a.logits, sizeof logits) && l1 == l2,
              "%s: ast_infer gives ast_forward's logits bit for bit", methods[k]);
        CHECK(!m.kept, "%s: ast_infer keeps nothing", methods[k]);
        ast_forward(&m, fb, labels, B, NULL);
        ast_backward(&m, labels, B);
        ast_forward(&fresh, fb, labels, B, NULL);
        ast_backward(&fresh, labels, B);
        CHECK(!memcmp(m.params.grad, fresh.params.grad, m.params.ngrad * sizeof(float)),
              "%s: gradients after an ast_infer equal a fresh model's", methods[k]);
        if (k == 0) kept_full = m.kept_floats;
        if (k == 1)
            CHECK(m.kept_floats == 0, "linear probing keeps no encoder activation (%zu floats)",
                  m.kept_floats);
        if (k == 2 || k == 3)  // frozen o projection: no attention output kept
            CHECK(m.kept_floats < kept_full, "%s keeps less than full fine-tuning (%zu vs %zu)",
                  methods[k], m.kept_floats, kept_full);
        ast_model_free(&m);
        ast_model_free(&fresh);
    }
    free(fb);
}

int main(void) {
    petal_rng_seed(&rng, 1234);
    check_linear();
    check_layernorm();
    check_gelu();
    check_attention();
    check_embed();
    check_pool_loss();
    check_model();
    check_keep();
    return check_done("gradcheck");
}
