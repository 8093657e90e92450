// Every PETL method and switch that changes the maths: finite-difference checks
// of the whole model's trainable gradients, neutral initialisation reproducing
// the backbone exactly, frozen tensors bit-identical after training, trainable
// parameter counts at ViT-B size, and clear errors for bad configurations.
#include <string.h>

#include "cmd/args.h"
#include "core/adamw.h"
#include "core/ast.h"
#include "core/train.h"
#include "tests/check.h"
#include "tests/gradcheck.h"

// "preset;key=value;..." -> method (asserts: these strings are the test's own).
static ast_method method_of(const char *spec) {
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", spec);
    ast_method m;
    petal_err err;
    char *tok = strtok_r(buf, ";", &save);
    if (ast_method_parse(&m, tok, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    while ((tok = strtok_r(NULL, ";", &save))) {
        char *eq = strchr(tok, '=');
        PETAL_ASSERT(eq);
        *eq = 0;
        if (ast_method_set(&m, tok, eq + 1, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            abort();
        }
    }
    return m;
}

static ast_config micro(ast_pool pool) {
    return (ast_config){.C = 16, .L = 2, .NH = 2, .MLP = 32, .F = 20, .frames = 26, .patch = 16,
                        .fstride = 4, .tstride = 10, .K = 3, .pool = pool, .ln_eps = 1e-12f,
                        .head_ln = pool == POOL_CLS_DIST};
}

typedef struct { ast_model *m; const float *fb; const int *labels; int B; } model_ctx;
static double model_obj(void *p) {
    model_ctx *c = p;
    return ast_forward(c->m, c->fb, c->labels, c->B, NULL);
}

static const struct {
    const char *spec;
    ast_pool pool;
} cases[] = {
    {"lora;lora.targets=qv;lora.rank=3", POOL_ALL},
    {"lora;lora.targets=qkvo;lora.rr=4;lora.init=paper", POOL_CLS},
    {"adapter_pfeiffer;adapter.dim=4", POOL_ALL},
    {"adapter_houlsby;adapter.dim=4;adapter.residual=1", POOL_ALL},
    {"adapter_pfeiffer;adapter.dim=4;adapter.conf=sequential;adapter.position=after;adapter.residual=1", POOL_ALL},
    {"adapter_pfeiffer;adapter.location=mhsa;adapter.dim=4;adapter.conf=sequential;adapter.residual=1", POOL_ALL},
    {"adapter_pfeiffer;adapter.location=mhsa;adapter.dim=4;adapter.position=after", POOL_CLS},
    {"adapter_pfeiffer;adapter.location=both;adapter.dim=4;adapter.conf=sequential;adapter.position=after", POOL_ALL},
    {"conformer;adapter.dim=4;adapter.kernel=3", POOL_ALL},
    {"conformer;adapter.location=mhsa;adapter.dim=4;adapter.kernel=5;adapter.conf=sequential;adapter.residual=1", POOL_ALL},
    // even kernels (one more zero on the right) and the reference's discarded LayerNorm
    {"conformer;adapter.location=both;adapter.dim=4;adapter.kernel=4", POOL_ALL},
    {"conformer;adapter.dim=3;adapter.kernel=2;adapter.norm=discarded;adapter.init=reference", POOL_CLS},
    {"conformer_paper_audio;adapter.dim=4;adapter.conf=sequential;adapter.position=after", POOL_ALL},
    {"bitfit", POOL_ALL},
    // the reference's ablation "sequential before": S(a) + a
    {"adapter_pfeiffer;adapter.dim=4;adapter.conf=sequential;adapter.seq_add=1", POOL_ALL},
    {"conformer;adapter.location=mhsa;adapter.dim=3;adapter.kernel=4;adapter.conf=sequential;adapter.seq_add=1;adapter.residual=1", POOL_ALL},
    {"bitfit_petal", POOL_CLS},
    {"prompt_shallow;prompt.tokens=3", POOL_ALL},
    {"prompt_deep;prompt.tokens=3", POOL_PROMPTS},
    {"prompt_deep;prompt.tokens=2", POOL_SPEECH},
    {"prompt_shallow;prompt.tokens=2", POOL_PROMPTS_SPEECH},
    {"prefix;prefix.tokens=4", POOL_ALL},
    {"lora;lora.rank=2;adapter.type=pfeiffer;adapter.dim=4", POOL_ALL},
    {"prompt_deep;prompt.tokens=2;adapter.type=houlsby;adapter.dim=4", POOL_ALL},
    {"prefix;prefix.tokens=2;lora.targets=o;lora.rank=2;base=bitfit", POOL_ALL},
    {"dense_moa;moa.experts=3;moa.dim=4", POOL_ALL},
    {"full", POOL_CLS_DIST},  // the HF classifier head: LayerNorm + Linear
    {"soft_moa;moa.experts=2;moa.slots=2;moa.dim=4;moa.location=both", POOL_CLS},
    {"adapter_pfeiffer;adapter.dim=4;moa.kind=dense;moa.experts=2;moa.dim=3", POOL_ALL},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static void check_gradients(void) {
    int B = 2, labels[2] = {2, 0};
    petal_rng rng;
    petal_rng_seed(&rng, 3);
    ast_config c0 = micro(POOL_ALL);
    float *fb = petal_falloc((size_t)B * c0.frames * c0.F);
    for (int i = 0; i < B * c0.frames * c0.F; i++) fb[i] = (float)petal_rng_normal(&rng);
    for (int k = 0; k < NCASES; k++) {
        ast_config cfg = micro(cases[k].pool);
        ast_method meth = method_of(cases[k].spec);
        ast_model m;
        petal_err err;
        if (ast_model_init(&m, &cfg, &meth, B, &err)) {
            CHECK(0, "%s: %s", cases[k].spec, err.msg);
            continue;
        }
        // Non-neutral weights everywhere so every path carries gradient.
        for (int i = 0; i < m.params.nrows; i++) {
            float *d = param_data(&m.params, i);
            for (size_t j = 0; j < m.params.rows[i].n; j++)
                d[j] = m.params.rows[i].buffer ? 1.0f : (float)(0.3 * petal_rng_normal(&rng));
        }
        model_ctx ctx = {&m, fb, labels, B};
        model_obj(&ctx);
        ast_backward(&m, labels, B);
        int checked = 0;
        for (int i = 0; i < m.params.nrows; i++) {
            float *g = param_grad(&m.params, i);
            if (!g) continue;
            float *keep = petal_falloc(m.params.rows[i].n);
            memcpy(keep, g, m.params.rows[i].n * sizeof *g);
            double e = fd_relerr(model_obj, &ctx, param_data(&m.params, i), keep,
                                 m.params.rows[i].n, 1e-2f, 10);
            CHECK(e < 2e-2, "%s: %s rel err %.3g", cases[k].spec, m.params.rows[i].name, e);
            free(keep);
            checked++;
        }
        CHECK(checked > 4, "%s: %d tensors checked", cases[k].spec, checked);
        ast_model_free(&m);
    }
    free(fb);
}

// Neutral methods start equal to the backbone: bit-identical logits.
static void check_neutral(void) {
    const char *neutral[] = {
        "lora", "lora;lora.targets=qkvo;lora.init=paper", "adapter_pfeiffer", "adapter_houlsby",
        "adapter_houlsby;adapter.init=reference",
        "adapter_pfeiffer;adapter.conf=sequential;adapter.position=after;adapter.residual=1",
        "adapter_pfeiffer;adapter.conf=sequential;adapter.residual=1",
        "adapter_pfeiffer;adapter.position=after", "conformer;adapter.kernel=3",
        "conformer;adapter.kernel=4", "conformer;adapter.kernel=2;adapter.norm=discarded",
        "conformer;adapter.location=both;adapter.kernel=3;adapter.position=after",
        "dense_moa", "soft_moa;moa.slots=2;moa.location=both"};
    ast_config cfg;
    petal_err err;
    PETAL_ASSERT(ast_config_preset(&cfg, "tiny", 48, 5, &err) == PETAL_OK);
    int B = 3, y[3];
    float *fb = petal_falloc((size_t)B * cfg.frames * cfg.F);
    synthetic_features(fb, y, B, cfg.frames, cfg.F, cfg.K, 9);
    ast_method base = method_of("linear");
    ast_model bm;
    PETAL_ASSERT(ast_model_init(&bm, &cfg, &base, B, &err) == PETAL_OK);
    ast_init_weights(&bm, 5, 0);
    ast_forward(&bm, fb, NULL, B, NULL);
    for (size_t k = 0; k < sizeof neutral / sizeof neutral[0]; k++) {
        ast_method meth = method_of(neutral[k]);
        ast_model m;
        PETAL_ASSERT(ast_model_init(&m, &cfg, &meth, B, &err) == PETAL_OK);
        ast_init_weights(&m, 77, 0);
        for (int i = 0; i < m.params.nrows; i++) {  // the backbone's weights
            int j = param_find(&bm.params, m.params.rows[i].name);
            if (j >= 0)
                memcpy(param_data(&m.params, i), param_data(&bm.params, j),
                       m.params.rows[i].n * sizeof(float));
        }
        ast_forward(&m, fb, NULL, B, NULL);
        CHECK(!memcmp(m.a.logits, bm.a.logits, (size_t)B * cfg.K * sizeof(float)),
              "%s: step-0 logits equal the backbone's", neutral[k]);
        ast_model_free(&m);
    }
    ast_model_free(&bm);
    free(fb);
}

// Training steps change trainable tensors only; frozen ones stay bit-identical.
static void check_frozen(void) {
    ast_config cfg;
    petal_err err;
    PETAL_ASSERT(ast_config_preset(&cfg, "tiny", 48, 5, &err) == PETAL_OK);
    int B = 4, y[4];
    float *fb = petal_falloc((size_t)B * cfg.frames * cfg.F);
    synthetic_features(fb, y, B, cfg.frames, cfg.F, cfg.K, 2);
    const char *methods[] = {"lora", "adapter_houlsby", "conformer;adapter.kernel=3",
                             "conformer_paper_audio",
                             "prompt_deep;prompt.tokens=4", "prefix;prefix.tokens=4",
                             "dense_moa", "soft_moa;moa.slots=2"};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        ast_method meth = method_of(methods[k]);
        ast_model m;
        PETAL_ASSERT(ast_model_init(&m, &cfg, &meth, B, &err) == PETAL_OK);
        ast_init_weights(&m, 1, 0);
        float *init = petal_falloc(m.params.ndata);
        memcpy(init, m.params.data, m.params.ndata * sizeof *init);
        adamw_config oc = adamw_defaults(1e-2f);
        adamw_state opt;
        adamw_init(&opt, &oc, &m.params);
        for (int s = 0; s < 3; s++) {
            ast_forward(&m, fb, y, B, NULL);
            ast_backward(&m, y, B);
            adamw_step(&opt, &m.params, oc.lr);
        }
        int frozen_same = 1, moved = 0, trainable = 0;
        for (int i = 0; i < m.params.nrows; i++) {
            const param_row *r = &m.params.rows[i];
            int same = !memcmp(param_data(&m.params, i), init + r->offset, r->n * sizeof(float));
            if (r->trainable) trainable++, moved += !same;
            else if (!r->buffer) frozen_same &= same;
        }
        CHECK(frozen_same, "%s: frozen tensors bit-identical after 3 steps", methods[k]);
        CHECK(moved == trainable, "%s: %d of %d trainable tensors moved", methods[k], moved,
              trainable);
        adamw_free(&opt);
        free(init);
        ast_model_free(&m);
    }
    free(fb);
}

// Exact trainable counts at ViT-B (C 768, L 12, MLP 3072, 110 tokens, K 35),
// worked out by hand: head 35*768+35 = 26915, final LN 1536 (together 28451);
// and the paper's Table 1 (arXiv 2312.03694 v4; issue 18), counted as the paper
// counts (no head, no final LayerNorm). Through the code path of `petal model
// params`: model_opts_resolve, ast_model_init, ast_param_counts.
static void check_counts(void) {
    static const struct {
        const char *method, *set;  // set: one --set key=value or NULL
        size_t trainable, paper;
    } want[] = {
        // r = 12: A (12, 768) + B (768, 12) per target, 2 targets, 12 layers
        {"lora", NULL, 12 * 2 * 18432 + 28451, 12 * 2 * 18432},
        // D = 12: down 9216 + 12, up 9216 + 768, + LN2 1536, per layer
        {"adapter_pfeiffer", NULL, 12 * (19212 + 1536) + 28451, 12 * (19212 + 1536)},
        {"adapter_houlsby", NULL, 12 * (2 * 19212 + 2 * 1536) + 28451, 12 * (2 * 19212 + 2 * 1536)},
        // 25 shallow + 11 * 25 deep prompt tokens of 768
        {"prompt_deep", "prompt.tokens=25", 12 * 25 * 768 + 28451, 230400},
        // 12 keys + 12 values of 768 per layer
        {"prefix", "prefix.tokens=24", 12 * 24 * 768 + 28451, 221184},
        // D = 12, k = 31: LN 1536, pw1 24*768+24, dw 12*31+12, BN 24, pw2 768*12+768, + LN2
        {"conformer", NULL, 12 * (1536 + 18456 + 384 + 24 + 9984 + 1536) + 28451,
         12 * (1536 + 18456 + 384 + 24 + 9984 + 1536)},
        // 4 experts of D = 12 (19212 each) + LN2 + router (4*768+4) or slots (768*4*1)
        {"dense_moa", NULL, 12 * (4 * 19212 + 1536 + 3076) + 28451, 12 * (4 * 19212 + 1536 + 3076)},
        {"soft_moa", NULL, 12 * (4 * 19212 + 1536 + 3072) + 28451, 12 * (4 * 19212 + 1536 + 3072)},
        {"full", NULL, 85366307, 85366307 - 28451},  // the paper's "85M"
        {"linear", NULL, 28451, 28451},              // linear probing counts its head
        // ---- the paper's Table 1 ("paper" column of issue 18)
        // BitFit: q k v o fc1 fc2 biases (6912) + LN1, LN2 biases (1536) per layer,
        // + the final LN bias 768 = 102,144; + head
        {"bitfit", NULL, 102144 + 26915, 102144},
        {"bitfit_petal", NULL, 102144 + 768 + 768 + 26915, 102144 + 768},  // + patch bias, LN weight
        {"prompt_shallow_paper", NULL, 230400 + 28451, 230400},             // 300 x 768
        {"prompt_deep_paper", NULL, 230400 + 28451, 230400},                // 12 x 25 x 768
        {"prefix_paper", NULL, 221184 + 28451, 221184},                     // 12 x 24 x 768
        {"lora_paper", NULL, 221184 + 28451, 221184},                       // r 6: 12 x 2 x 2 x 4608
        {"adapter_pfeiffer_paper", NULL, 248976 + 28451, 248976},           // D 12
        {"adapter_houlsby_paper", NULL, 497952 + 28451, 497952},
        // D 8: LN 1536 (counted, discarded), pw1 12304, dw 8*31+8, BN 16, pw2 6912, + LN2 1536
        {"conformer_paper_speech", NULL, 270720 + 28451, 270720},
        {"conformer_paper_speech", "adapter.type=houlsby", 541440 + 28451, 541440},
        {"conformer_paper_audio", NULL, 268512 + 28451, 268512},            // dw 8*8+8
        // the applied LayerNorm counts the same (it trains instead of idling)
        {"conformer_paper_audio", "adapter.norm=applied", 268512 + 28451, 268512},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        model_opts mo = {.size = "base", .method = want[k].method, .pool = "all", .frames = 100,
                         .classes = 35, .sets = {want[k].set}, .nsets = want[k].set != NULL};
        ast_config cfg;
        ast_method meth;
        ast_model m;
        petal_err err;
        // Only the table is needed; a batch of 1 keeps the arena small.
        PETAL_ASSERT(model_opts_resolve(&cfg, &meth, &mo, &err) == PETAL_OK &&
                     ast_model_init(&m, &cfg, &meth, 1, &err) == PETAL_OK);
        size_t tr, paper, total;
        ast_param_counts(&m, &tr, &paper, &total);
        CHECK(tr == want[k].trainable && paper == want[k].paper,
              "%s %s: %zu trainable, %zu the paper's way; want %zu, %zu", want[k].method,
              want[k].set ? want[k].set : "", tr, paper, want[k].trainable, want[k].paper);
        ast_model_free(&m);
    }
}

// BitFit's rows exactly: the reference's (every Linear / LayerNorm bias, the
// final LayerNorm's bias but not its weight, not the patch projection's bias,
// the head) and bitfit_petal's (plus those two).
static void check_bitfit_rows(void) {
    ast_config cfg = micro(POOL_ALL);
    for (int petal = 0; petal < 2; petal++) {
        ast_method meth = method_of(petal ? "bitfit_petal" : "bitfit");
        ast_model m;
        petal_err err;
        PETAL_ASSERT(ast_model_init(&m, &cfg, &meth, 2, &err) == PETAL_OK);
        int wrong = 0;
        for (int i = 0; i < m.params.nrows; i++) {
            const char *n = m.params.rows[i].name;
            size_t len = strlen(n);
            int bias = len > 5 && !strcmp(n + len - 5, ".bias");
            int want = !strncmp(n, "classifier.", 11) ||
                       (bias && strncmp(n, "embeddings.", 11)) ||
                       (petal && (!strcmp(n, "layernorm.weight") ||
                                  !strcmp(n, "embeddings.patch_embeddings.projection.bias")));
            if (want != m.params.rows[i].trainable) {
                fprintf(stderr, "  %s: %s trainable %d\n", meth.name, n, m.params.rows[i].trainable);
                wrong++;
            }
        }
        CHECK(!wrong, "%s trains exactly its rows (%d wrong)", meth.name, wrong);
        ast_model_free(&m);
    }
}

// LoRA merged into the frozen projections computes the same function, and the
// merged backbone alone (no LoRA rows) reproduces it.
static void check_lora_merge(void) {
    ast_config cfg;
    petal_err err;
    PETAL_ASSERT(ast_config_preset(&cfg, "tiny", 48, 5, &err) == PETAL_OK);
    int B = 3, y[3];
    float *fb = petal_falloc((size_t)B * cfg.frames * cfg.F);
    synthetic_features(fb, y, B, cfg.frames, cfg.F, cfg.K, 4);
    ast_method meth = method_of("lora;lora.targets=qkvo;lora.rank=4");
    ast_model m;
    PETAL_ASSERT(ast_model_init(&m, &cfg, &meth, B, &err) == PETAL_OK);
    ast_init_weights(&m, 3, 0);
    petal_rng rng;
    petal_rng_seed(&rng, 8);
    for (int i = 0; i < m.params.nrows; i++)  // a trained-looking LoRA: A and B nonzero
        if (strstr(m.params.rows[i].name, "lora_")) {
            float *d = param_data(&m.params, i);
            for (size_t j = 0; j < m.params.rows[i].n; j++) d[j] = (float)(0.2 * petal_rng_normal(&rng));
        }
    ast_forward(&m, fb, NULL, B, NULL);
    float before[15], delta = 0;
    memcpy(before, m.a.logits, sizeof before);
    ast_method plain = method_of("linear");
    ast_model p;
    PETAL_ASSERT(ast_model_init(&p, &cfg, &plain, B, &err) == PETAL_OK);
    for (int i = 0; i < p.params.nrows; i++)
        memcpy(param_data(&p.params, i), param_data(&m.params, param_find(&m.params, p.params.rows[i].name)),
               p.params.rows[i].n * sizeof(float));
    ast_forward(&p, fb, NULL, B, NULL);
    for (int i = 0; i < 15; i++) delta = fmaxf(delta, fabsf(p.a.logits[i] - before[i]));
    CHECK(delta > 1e-3, "precondition: LoRA changes the logits (%g)", delta);
    ast_lora_merge(&m);
    ast_forward(&m, fb, NULL, B, NULL);
    double num = 0, den = 0;
    for (int i = 0; i < 15; i++) num += (m.a.logits[i] - before[i]) * (m.a.logits[i] - before[i]), den += before[i] * before[i];
    CHECK(sqrt(num / den) < 1e-5, "merged model computes the same logits (rel %g)", sqrt(num / den));
    for (int i = 0; i < p.params.nrows; i++)
        memcpy(param_data(&p.params, i), param_data(&m.params, param_find(&m.params, p.params.rows[i].name)),
               p.params.rows[i].n * sizeof(float));
    ast_forward(&p, fb, NULL, B, NULL);
    num = 0;
    for (int i = 0; i < 15; i++) num += (p.a.logits[i] - before[i]) * (p.a.logits[i] - before[i]);
    CHECK(sqrt(num / den) < 1e-5, "merged backbone alone reproduces them (rel %g)", sqrt(num / den));
    ast_model_free(&p);
    ast_model_free(&m);
    free(fb);
}

static void check_errors(void) {
    ast_config cfg = micro(POOL_ALL);
    ast_model m;
    petal_err err;
    ast_method meth = method_of("prefix;prefix.tokens=3");
    CHECK(ast_model_init(&m, &cfg, &meth, 2, &err) == PETAL_EINPUT && strstr(err.msg, "even"),
          "odd prefix: %s", err.msg);
    meth = method_of("conformer;adapter.kernel=4");
    CHECK(ast_model_init(&m, &cfg, &meth, 2, &err) == PETAL_OK, "even kernel accepted: %s",
          err.msg);
    ast_model_free(&m);
    meth = method_of("adapter_pfeiffer;adapter.seq_add=1");
    CHECK(ast_model_init(&m, &cfg, &meth, 2, &err) == PETAL_EINPUT && strstr(err.msg, "seq_add"),
          "seq_add outside sequential-before: %s", err.msg);
    CHECK(ast_method_set(&meth, "adapter.norm", "skipped", &err) == PETAL_EINPUT &&
              strstr(err.msg, "adapter.norm"), "bad adapter.norm: %s", err.msg);
    CHECK(ast_method_set(&meth, "base", "bitfix", &err) == PETAL_EINPUT &&
              strstr(err.msg, "bitfit_petal"), "bad base: %s", err.msg);
    meth = method_of("lora");
    cfg.pool = POOL_PROMPTS;
    CHECK(ast_model_init(&m, &cfg, &meth, 2, &err) == PETAL_EINPUT && strstr(err.msg, "prompt"),
          "prompt pooling without prompts: %s", err.msg);
    CHECK(ast_method_set(&meth, "lora.targets", "qx", &err) == PETAL_EINPUT &&
              strstr(err.msg, "lora.targets"), "bad target: %s", err.msg);
    CHECK(ast_method_set(&meth, "adapter.colour", "red", &err) == PETAL_EINPUT &&
              strstr(err.msg, "adapter.colour"), "unknown key: %s", err.msg);
    CHECK(ast_method_parse(&meth, "dora", &err) == PETAL_EINPUT && strstr(err.msg, "dora"),
          "unknown method: %s", err.msg);
}

int main(void) {
    check_gradients();
    check_neutral();
    check_frozen();
    check_counts();
    check_bitfit_rows();
    check_lora_merge();
    check_errors();
    return check_done("methods");
}
