// Training behaviour: determinism, a falling loss, frozen tensors untouched and
// without gradient memory, no weight-gradient GEMMs for frozen weights, the
// cosine schedule, the best-model copy, and divergence reported as a failure.
#include <math.h>
#include <string.h>

#include <hdf5.h>

#include "core/checkpoint.h"
#include "core/trainer.h"
#include <unistd.h>
#include "tests/check.h"

static ast_config tiny(void) {
    ast_config c;
    petal_err err;
    PETAL_ASSERT(ast_config_preset(&c, "tiny", 48, 4, &err) == PETAL_OK);
    return c;
}

static void make_set(feature_set *s, const ast_config *c, int n, uint64_t seed) {
    float *x = petal_falloc((size_t)n * c->frames * c->F);
    int *y = petal_malloc(sizeof(int) * (size_t)n);
    synthetic_features(x, y, n, c->frames, c->F, c->K, seed);
    *s = (feature_set){x, y, n};
}

static void free_set(feature_set *s) { free((void *)s->x), free((void *)s->y); }

// Trains `epochs` epochs from seed-initialised weights (the trainer owns the model).
static void train(trainer *t, const char *method, const feature_set *data, int epochs,
                  uint64_t seed, double *first_loss, double *last_loss) {
    ast_config c = tiny();
    ast_method meth;
    petal_err err;
    PETAL_ASSERT(ast_method_parse(&meth, method, &err) == PETAL_OK);
    trainer_config tc = {.epochs = epochs, .batch = 8, .seed = seed,
                       .opt = adamw_defaults(meth.base == METHOD_FULL ? 1e-3f : 5e-3f)};
    PETAL_ASSERT(trainer_init(t, &c, &meth, &tc, data, data, data, NULL, NULL, &err) == PETAL_OK);
    CHECK(t->opt.n == t->m.params.nmom, "moments sized for every trainable row");
    CHECK(trainer_run(t, NULL, NULL, &err) == PETAL_OK, "run: %s", err.msg);
    if (epochs) *first_loss = t->hist[0].train_loss, *last_loss = t->hist[epochs - 1].train_loss;
}

static void check_determinism_and_learning(void) {
    ast_config c = tiny();
    feature_set d;
    make_set(&d, &c, 48, 11);
    trainer a, b;
    double f1, l1, f2, l2;
    train(&a, "full", &d, 6, 3, &f1, &l1);
    train(&b, "full", &d, 6, 3, &f2, &l2);
    CHECK(!memcmp(a.m.params.data, b.m.params.data, a.m.params.ndata * sizeof(float)),
          "same seed, bit-identical weights");
    CHECK(f1 == f2 && l1 == l2, "same seed, same losses");
    CHECK(l1 < 0.7 * f1, "loss falls: %.4f -> %.4f", f1, l1);
    trainer_free(&b);
    train(&b, "full", &d, 1, 4, &f2, &l2);
    CHECK(memcmp(a.m.params.data, b.m.params.data, a.m.params.ndata * sizeof(float)),
          "another seed, other weights");
    trainer_free(&a);
    trainer_free(&b);
    free_set(&d);
}

static void check_frozen(const char *method) {
    ast_config c = tiny();
    feature_set d;
    make_set(&d, &c, 24, 5);
    trainer t;
    double f, l;
    train(&t, method, &d, 0, 9, &f, &l);  // the initial weights
    float *init = petal_falloc(t.m.params.ndata);
    memcpy(init, t.m.params.data, t.m.params.ndata * sizeof *init);
    trainer_free(&t);
    train(&t, method, &d, 3, 9, &f, &l);
    const param_table *p = &t.m.params;
    size_t expect_grad = 0;
    int frozen_same = 1, trained_moved = 1;
    for (int i = 0; i < p->nrows; i++) {
        const param_row *r = &p->rows[i];
        int same = !memcmp(param_data(p, i), init + r->offset, r->n * sizeof(float));
        if (r->trainable) {
            expect_grad += (r->n + 15) / 16 * 16;
            // The key bias gets exactly zero gradient; only weight decay moves it.
            trained_moved &= !same;
            CHECK(param_grad(p, i) != NULL, "%s: %s has gradient memory", method, r->name);
        } else {
            frozen_same &= same;
            CHECK(param_grad(p, i) == NULL, "%s: frozen %s has no gradient", method, r->name);
        }
    }
    CHECK(frozen_same, "%s: frozen tensors bit-identical after training", method);
    CHECK(trained_moved, "%s: every trainable tensor moved", method);
    CHECK(p->nmom == expect_grad, "%s: moment memory = trainable rows only (%zu vs %zu)",
          method, p->nmom, expect_grad);
    // The trainer's model keeps one encoder layer's gradients at a time.
    size_t outside = 0, layer0 = 0;
    for (int i = 0; i < p->nrows; i++) {
        const param_row *r = &p->rows[i];
        if (r->trainable && r->layer < 0) outside += (r->n + 15) / 16 * 16;
        if (r->trainable && r->layer == 0) layer0 += (r->n + 15) / 16 * 16;
    }
    CHECK(p->ngrad == outside + layer0, "%s: gradient memory = the rows outside the layers + one "
          "layer (%zu vs %zu + %zu)", method, p->ngrad, outside, layer0);
    free(init);
    trainer_free(&t);
    free_set(&d);
}

// Backward GEMM FLOPs per method: frozen weights run no weight-gradient GEMM,
// and nothing runs below the lowest trainable layer.
// The trainer's step (train_backward_step on a layerwise model: AdamW per
// layer inside the backward, one layer of gradient memory) equals the plain
// backward then adamw_step, bit for bit, for every kind of method.
static void check_layerwise_step(void) {
    ast_config c = tiny();
    int B = 4;
    float *x = petal_falloc((size_t)B * c.frames * c.F);
    int y[4];
    synthetic_features(x, y, B, c.frames, c.F, c.K, 2);
    const char *methods[] = {"full", "bitfit", "lora", "adapter_houlsby", "conformer",
                             "prompt_deep", "prefix", "soft_moa", "dense_moa", "linear"};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        ast_method meth;
        ast_model a, b;
        petal_err err;
        PETAL_ASSERT(ast_method_parse(&meth, methods[k], &err) == PETAL_OK);
        PETAL_ASSERT(ast_model_init(&a, &c, &meth, B, &err) == PETAL_OK);
        PETAL_ASSERT(ast_model_init_layerwise(&b, &c, &meth, B, &err) == PETAL_OK);
        ast_init_weights(&a, 5, 0);
        ast_init_weights(&b, 5, 0);
        adamw_config oc = adamw_defaults(3e-3f);
        adamw_state oa, ob;
        adamw_init(&oa, &oc, &a.params);
        adamw_init(&ob, &oc, &b.params);
        int ok = 1;
        for (int s = 0; s < 3; s++) {
            ast_forward(&a, x, y, B, NULL);
            ast_backward(&a, y, B);
            adamw_step(&oa, &a.params, cosine_lr(oc.lr, s, 3));
            ast_forward(&b, x, y, B, NULL);
            ok &= train_backward_step(&b, &ob, cosine_lr(oc.lr, s, 3), y, B) == 0;
        }
        CHECK(ok, "%s: layerwise step reported a non-finite gradient", methods[k]);
        CHECK(!memcmp(a.params.data, b.params.data, a.params.ndata * sizeof(float)) &&
              !memcmp(oa.m, ob.m, oa.n * sizeof(float)) && !memcmp(oa.v, ob.v, oa.n * sizeof(float)),
              "%s: layerwise AdamW differs from backward + adamw_step", methods[k]);
        if (!strcmp(methods[k], "full")) {
            CHECK(b.params.ngrad < a.params.ngrad, "full: layerwise gradients %zu of %zu floats",
                  b.params.ngrad, a.params.ngrad);
            // The finiteness report the step relies on, per part and in the
            // vector body and the scalar tail of a row.
            int r = param_find(&a.params, "encoder.layer.1.output.dense.weight");
            int rb = param_find(&a.params, "classifier.dense.bias");  // K = 4: scalar tail only
            PETAL_ASSERT(r >= 0 && rb >= 0);
            adamw_begin(&oa, 1e-3f);
            CHECK(adamw_apply(&oa, &a.params, 1, 0) && adamw_apply(&oa, &a.params, -1, 0),
                  "finite gradients are reported finite");
            param_grad(&a.params, r)[7] = INFINITY;
            CHECK(!adamw_apply(&oa, &a.params, 1, 0) && adamw_apply(&oa, &a.params, 0, 0) &&
                  adamw_apply(&oa, &a.params, -1, 0) &&
                  !adamw_apply(&oa, &a.params, PARAM_EVERY_LAYER, 0),
                  "an Inf gradient is found in its layer only");
            param_grad(&a.params, r)[7] = 0.0f;
            param_grad(&a.params, rb)[a.params.rows[rb].n - 1] = NAN;
            CHECK(!adamw_apply(&oa, &a.params, -1, 1) && param_grad(&a.params, rb)[0] == 0.0f &&
                  adamw_apply(&oa, &a.params, -1, 0),
                  "a NaN in a short row is found; clear zeroes the gradients it read");
        }
        adamw_free(&oa);
        adamw_free(&ob);
        ast_model_free(&a);
        ast_model_free(&b);
    }
    free(x);
}

static void check_backward_work(void) {
    ast_config c = tiny();
    int B = 4, N = B * ast_tokens(&c), NP = ast_tokens(&c) - 2;
    float *x = petal_falloc((size_t)B * c.frames * c.F);
    int y[4];
    synthetic_features(x, y, B, c.frames, c.F, c.K, 1);
    double bw[3];
    const char *names[3] = {"full", "linear", "bitfit"};
    for (int k = 0; k < 3; k++) {
        ast_method meth;
        ast_model m;
        petal_err err;
        ast_method_parse(&meth, names[k], &err);
        PETAL_ASSERT(ast_model_init(&m, &c, &meth, B, &err) == PETAL_OK);
        ast_init_weights(&m, 1, 0);
        ast_forward(&m, x, y, B, NULL);
        petal_gemm_flops = 0;
        ast_backward(&m, y, B);
        bw[k] = petal_gemm_flops;
        ast_model_free(&m);
    }
    double C = c.C, MLP = c.MLP, head = 2.0 * B * C * c.K;
    double dw = c.L * 2.0 * N * (3 * C * C + C * C + 2 * C * MLP) + 2.0 * B * NP * 256 * C;
    CHECK(bw[1] == 2 * head, "linear: backward is the head only (%g vs %g)", bw[1], 2 * head);
    CHECK(fabs(bw[0] - bw[2] - dw) < 1, "bitfit skips exactly the weight-gradient GEMMs (%g)",
          bw[0] - bw[2] - dw);
    free(x);
}

static void check_schedule(void) {
    CHECK(cosine_lr(1.0f, 0, 10) == 1.0f, "cosine starts at the base lr");
    CHECK(fabsf(cosine_lr(1.0f, 5, 10) - 0.5f) < 1e-6f, "cosine halfway is half");
    CHECK(cosine_lr(1.0f, 10, 10) == 0.0f, "cosine ends at 0");
    CHECK(cosine_lr(1.0f, 3, 10) > cosine_lr(1.0f, 4, 10), "cosine decreases");
}


// One fold trained without checkpoints: what the best-copy tests compare.
typedef struct {
    int best_epoch;
    double best_valid_acc, last_valid_acc, test_acc;
} fold_result;
static int fit(fold_result *r, const ast_config *c, const ast_method *meth, const trainer_config *tc,
               const feature_set *tr, const feature_set *va, const feature_set *te, petal_err *err) {
    trainer t;
    int st = trainer_init(&t, c, meth, tc, tr, va, te, NULL, NULL, err);
    if (!st) st = trainer_run(&t, NULL, NULL, err);
    *r = (fold_result){t.best_epoch, t.best_acc, t.epoch ? t.hist[t.epoch - 1].valid_acc : 0.0,
                       t.test_acc};
    trainer_free(&t);
    return st;
}

static void check_trial(void) {
    ast_config c = tiny();
    feature_set tr, va, te;
    make_set(&tr, &c, 32, 1), make_set(&va, &c, 16, 2), make_set(&te, &c, 16, 3);
    ast_method meth;
    petal_err err;
    ast_method_parse(&meth, "full", &err);
    // A high learning rate makes later epochs worse than an earlier best one:
    // the tested model must be the best-validation copy, not the last weights.
    trainer_config tc = {.epochs = 8, .batch = 8, .opt = adamw_defaults(3e-3f), .seed = 2};
    fold_result r1, r2;
    CHECK(fit(&r1, &c, &meth, &tc, &tr, &va, &te, &err) == PETAL_OK, "%s", err.msg);
    CHECK(fit(&r2, &c, &meth, &tc, &tr, &va, &te, &err) == PETAL_OK, "%s", err.msg);
    CHECK(r1.test_acc == r2.test_acc && r1.best_epoch == r2.best_epoch, "trials repeat exactly");
    CHECK(r1.best_epoch >= 1 && r1.best_epoch <= 8, "best epoch in range");
    // Validate on the test set itself: the tested model must score exactly the
    // best validation accuracy, which a last-epoch model would not whenever the
    // last epoch is worse. Several seeds, so that case occurs whatever the BLAS.
    tc.opt = adamw_defaults(2e-2f);
    int copy_ok = 1, last_worse = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        tc.seed = seed;
        CHECK(fit(&r1, &c, &meth, &tc, &tr, &te, &te, &err) == PETAL_OK, "%s", err.msg);
        copy_ok &= r1.test_acc == r1.best_valid_acc;
        last_worse += r1.last_valid_acc < r1.best_valid_acc;
    }
    CHECK(copy_ok, "tested the best-validation copy");
    CHECK(last_worse > 0, "some trial's last epoch was worse than its best (else the check is void)");
    // Divergence: a NaN weight makes the loss NaN; the trial fails with a reason.
    trainer t;
    PETAL_ASSERT(trainer_init(&t, &c, &meth, &tc, &tr, &va, &te, NULL, NULL, &err) == PETAL_OK);
    t.m.w.head_w[0] = NAN;
    int s = trainer_run(&t, NULL, NULL, &err);
    CHECK(s == PETAL_EFAIL && strstr(err.msg, "loss is nan") && strstr(err.msg, "epoch 1") &&
              t.diverged,
          "divergence reported with its epoch: %s", err.msg);
    trainer_free(&t);
    free_set(&tr), free_set(&va), free_set(&te);
}

// Runs a conformer-adapter trial with SpecAugment (so BatchNorm running
// statistics, the augmentation draws and the shuffles all live in the
// checkpointed state) to the end, optionally stopping at `stop` steps and
// resuming from the file, repeatedly. Returns the trainer.
static void conformer_init(trainer *t, const feature_set *tr, const feature_set *va,
                           const feature_set *te) {
    ast_config c = tiny();
    ast_method meth;
    petal_err err;
    PETAL_ASSERT(ast_method_parse(&meth, "conformer", &err) == PETAL_OK);
    PETAL_ASSERT(ast_method_set(&meth, "adapter.kernel", "3", &err) == PETAL_OK);
    static specaug_config aug = {.freq_mask_max = 8, .time_mask_max = 10, .freq_masks = 1,
                                 .time_masks = 1};
    trainer_config tc = {.epochs = 4, .batch = 8, .seed = 5, .opt = adamw_defaults(5e-3f),
                       .aug = &aug};
    PETAL_ASSERT(trainer_init(t, &c, &meth, &tc, tr, va, te, NULL, NULL, &err) == PETAL_OK);
}

static void run_with_stops(trainer *t, const long *stops, int nstops, const char *ckpt,
                           const feature_set *tr, const feature_set *va, const feature_set *te) {
    petal_err err;
    unlink(ckpt);
    for (int k = 0; k <= nstops; k++) {
        conformer_init(t, tr, va, te);
        if (k > 0) CHECK(checkpoint_load(t, ckpt, "trial", &err) == PETAL_OK, "load: %s", err.msg);
        t->stop_at_step = k < nstops ? stops[k] : -1;
        int st = trainer_run(t, ckpt, "trial", &err);
        CHECK(st == (k < nstops ? PETAL_STOPPED : PETAL_OK), "stop %d: status %d %s", k, st,
              st == PETAL_EFAIL ? err.msg : "");
        if (k < nstops) trainer_free(t);
    }
}

static int same_history(const trainer *a, const trainer *b) {
    for (int e = 0; e < a->tc.epochs; e++) {
        epoch_record x = a->hist[e], y = b->hist[e];
        x.seconds = y.seconds = 0;  // wall time is the one thing allowed to differ
        if (memcmp(&x, &y, sizeof x)) return 0;
    }
    return 1;
}

static void check_resume(void) {
    ast_config c = tiny();
    feature_set tr, va, te;
    make_set(&tr, &c, 36, 1), make_set(&va, &c, 16, 2), make_set(&te, &c, 16, 3);
    char ckpt[] = "/tmp/petal_test_ckpt_XXXXXX";
    int fd = mkstemp(ckpt);
    PETAL_ASSERT(fd >= 0);
    close(fd);
    trainer ref, t;
    run_with_stops(&ref, NULL, 0, ckpt, &tr, &va, &te);
    // 5 steps per epoch (36 / 8): stop inside epoch 1, at the end of epoch 2
    // (step 10), inside epoch 3, and twice in a row in epoch 4.
    const long stops[] = {3, 10, 12, 16, 18};
    run_with_stops(&t, stops, 5, ckpt, &tr, &va, &te);
    CHECK(!memcmp(ref.m.params.data, t.m.params.data, ref.m.params.ndata * sizeof(float)),
          "resumed trial ends with bit-identical weights and BatchNorm statistics");
    CHECK(!memcmp(ref.best, t.best, ref.nbest * sizeof(float)), "and the same best copy");
    CHECK(!memcmp(ref.opt.m, t.opt.m, ref.opt.n * sizeof(float)) &&
              !memcmp(ref.opt.v, t.opt.v, ref.opt.n * sizeof(float)), "and optimizer moments");
    CHECK(ref.test_acc == t.test_acc && ref.best_epoch == t.best_epoch &&
              ref.best_acc == t.best_acc && ref.test_loss == t.test_loss,
          "and the same metrics (%.4f vs %.4f)", ref.test_acc, t.test_acc);
    CHECK(same_history(&ref, &t), "and the same per-epoch history");
    trainer_free(&t);

    // The finished checkpoint holds the best state without the live one and the
    // moments (a quarter of full fine-tuning's size); loaded, the model takes
    // the best state and the results are those of the run.
    hid_t h = H5Fopen(ckpt, H5F_ACC_RDONLY, H5P_DEFAULT);
    PETAL_ASSERT(h >= 0);
    CHECK(H5Lexists(h, "best", H5P_DEFAULT) > 0 && H5Lexists(h, "params", H5P_DEFAULT) == 0 &&
              H5Lexists(h, "adam_m", H5P_DEFAULT) == 0 && H5Lexists(h, "adam_v", H5P_DEFAULT) == 0,
          "a finished checkpoint keeps the best state and drops the live state and the moments");
    H5Fclose(h);
    {
        petal_err err;
        conformer_init(&t, &tr, &va, &te);
        CHECK(checkpoint_load(&t, ckpt, "trial", &err) == PETAL_OK, "finished load: %s", err.msg);
        float *state = petal_falloc(ref.nbest);
        param_pack(state, &t.m.params, PARAM_STATE);
        CHECK(t.done && !memcmp(ref.best, state, ref.nbest * sizeof(float)) &&
                  !memcmp(ref.best, t.best, ref.nbest * sizeof(float)),
              "a loaded finished checkpoint puts the best state in the model");
        free(state);
        CHECK(ref.test_acc == t.test_acc && ref.test_loss == t.test_loss &&
                  ref.best_epoch == t.best_epoch && same_history(&ref, &t),
              "and gives the run's results and history");
        trainer_free(&t);
    }

    // Bad checkpoints: another configuration, a truncated file, not HDF5.
    petal_err err;
    ast_method meth;
    ast_method_parse(&meth, "conformer", &err);
    ast_method_set(&meth, "adapter.kernel", "3", &err);
    trainer_config tc = {.epochs = 4, .batch = 8, .seed = 5, .opt = adamw_defaults(5e-3f)};
    PETAL_ASSERT(trainer_init(&t, &c, &meth, &tc, &tr, &va, &te, NULL, NULL, &err) == PETAL_OK);
    CHECK(checkpoint_load(&t, ckpt, "another trial", &err) == PETAL_EINPUT &&
              strstr(err.msg, "another trial configuration"), "other config: %s", err.msg);
    FILE *f = fopen(ckpt, "r+b");
    PETAL_ASSERT(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    PETAL_ASSERT(truncate(ckpt, size / 2) == 0);
    CHECK(checkpoint_load(&t, ckpt, "trial", &err) == PETAL_EINPUT && strstr(err.msg, ckpt),
          "truncated checkpoint: %s", err.msg);
    f = fopen(ckpt, "wb");
    fputs("not a checkpoint", f);
    fclose(f);
    CHECK(checkpoint_load(&t, ckpt, "trial", &err) == PETAL_EINPUT, "garbage: %s", err.msg);
    trainer_free(&t);
    trainer_free(&ref);
    unlink(ckpt);
    free_set(&tr), free_set(&va), free_set(&te);
}

// The linear-probe fast path (encoder outputs computed once) gives the same
// trial as running the whole model every step, up to float rounding (the
// encoder's GEMMs see other batch compositions).
static void check_fast_path(void) {
    ast_config c = tiny();
    feature_set tr, va, te;
    make_set(&tr, &c, 36, 1), make_set(&va, &c, 16, 2), make_set(&te, &c, 16, 3);
    ast_method meth;
    petal_err err;
    ast_method_parse(&meth, "linear", &err);
    trainer_config tc = {.epochs = 3, .batch = 8, .seed = 2, .opt = adamw_defaults(1e-2f)};
    trainer f, s;
    PETAL_ASSERT(trainer_init(&f, &c, &meth, &tc, &tr, &va, &te, NULL, NULL, &err) == PETAL_OK);
    PETAL_ASSERT(trainer_init(&s, &c, &meth, &tc, &tr, &va, &te, NULL, NULL, &err) == PETAL_OK);
    CHECK(f.fast, "linear probing takes the fast path");
    s.fast = 0;
    CHECK(trainer_run(&f, NULL, NULL, &err) == PETAL_OK, "%s", err.msg);
    CHECK(trainer_run(&s, NULL, NULL, &err) == PETAL_OK, "%s", err.msg);
    CHECK(f.enc[0] != NULL && s.enc[0] == NULL, "encodings made on the fast path only");
    double num = 0, den = 0;
    for (size_t i = 0; i < f.m.params.ndata; i++) {
        double d = f.m.params.data[i] - s.m.params.data[i];
        num += d * d;
        den += (double)s.m.params.data[i] * s.m.params.data[i];
    }
    CHECK(sqrt(num / den) < 1e-5, "fast path: the same weights (rel %.3g)", sqrt(num / den));
    CHECK(fabs(f.test_acc - s.test_acc) <= 1.0 / te.n && fabs(f.hist[2].train_loss -
          s.hist[2].train_loss) < 1e-4, "fast path: the same metrics (%.4f vs %.4f)", f.test_acc,
          s.test_acc);
    trainer_free(&f);
    trainer_free(&s);
    ast_method_parse(&meth, "lora", &err);
    PETAL_ASSERT(trainer_init(&f, &c, &meth, &tc, &tr, &va, &te, NULL, NULL, &err) == PETAL_OK);
    CHECK(!f.fast, "LoRA trains inside the encoder: no fast path");
    trainer_free(&f);
    specaug_config aug = specaug_config_ast();
    tc.aug = &aug;
    ast_method_parse(&meth, "linear", &err);
    PETAL_ASSERT(trainer_init(&f, &c, &meth, &tc, &tr, &va, &te, NULL, NULL, &err) == PETAL_OK);
    CHECK(!f.fast, "SpecAugment changes the inputs every epoch: no fast path");
    trainer_free(&f);
    free_set(&tr), free_set(&va), free_set(&te);
}

int main(void) {
    check_layerwise_step();
    check_determinism_and_learning();
    check_frozen("linear");
    check_frozen("bitfit");
    check_backward_work();
    check_schedule();
    check_trial();
    check_resume();
    check_fast_path();
    return check_done("train");
}
