// ==== A trial: settings -> every fold through the trainer -> a record ============
#include "core/trial.h"

#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/backbone.h"
#include "core/checkpoint.h"
#include "core/features.h"

// The reference recipe per dataset: max_len, batch, epochs, SpecAugment.
static const struct {
    const char *layout;
    int frames, batch, epochs, specaug;
} recipe[] = {
    {"esc50", 500, 32, 50, 1}, {"us8k", 400, 32, 30, 1}, {"gsc", 100, 128, 75, 0},
    {"fsc", 400, 32, 75, 0},   {"folder", 100, 32, 30, 0}, {"synthetic", 48, 8, 5, 0},
};

// err's message prefixed with where the key its message starts with was set
// ("file:line:col: lora.rank 65536 is larger ..."), when that key is in kv.
static int at_key(const config_kv *kv, petal_err *err, int st) {
    char key[CONFIG_KEY_MAX], where[300], msg[sizeof err->msg];
    if (sscanf(err->msg, "%255[a-z_.]", key) != 1) return st;
    const config_entry *e = config_find(kv, key);
    if (!e) return st;
    config_where(where, sizeof where, e);
    snprintf(msg, sizeof msg, "%s", err->msg);
    return petal_fail(err, st, "%s: %s", where, msg);
}

// Method settings that are wrong whatever the model (checked before any data
// is read, naming where the key was set).
static int check_method_keys(const trial_settings *ts, const config_kv *kv, petal_err *err) {
    const ast_method *m = &ts->method;
    int st = PETAL_OK;
    if (m->prefix.tokens % 2)
        st = petal_fail(err, PETAL_EINPUT,
                        "prefix.tokens must be even (P/2 keys and P/2 values), got %d",
                        m->prefix.tokens);
    return st ? at_key(kv, err, st) : PETAL_OK;
}

// The method against the model's sizes (rank or bottleneck wider than the
// hidden size, ...), before any data is read: the backbone file's
// architecture or the preset's. K does not matter here.
static int check_model(const trial_settings *ts, const config_kv *kv, petal_err *err) {
    ast_config cfg;
    int st = trial_model_config(&cfg, ts, 2, err);
    if (st) return st;
    ast_method m = ts->method;
    st = ast_method_resolve(&m, cfg.C, cfg.L, err);
    return st ? at_key(kv, err, st) : PETAL_OK;
}

// A method key whose part the method does not have (lora.rank on an adapter
// method, say) would be silently ignored: refuse it where it was written.
static int check_families(const ast_method *m, const config_kv *kv, petal_err *err) {
    static const struct {
        const char *prefix, *part, *switch_on;
    } fam[] = {{"lora.", "LoRA", "lora.targets"},     {"adapter.", "adapter", "adapter.type"},
               {"prompt.", "prompt", "prompt.tokens"}, {"moa.", "mixture of adapters", "moa.kind"}};
    int has[] = {m->lora.targets != 0, m->adapter.at_mhsa || m->adapter.at_ffn,
                 m->prompt.tokens > 0, m->moa.kind != MOA_NONE};
    for (int i = 0; i < kv->n; i++)
        for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
            const char *k = kv->e[i].key;
            if (strncmp(k, fam[f].prefix, strlen(fam[f].prefix)) || has[f]) continue;
            if (!strcmp(k, "prompt.tokens")) continue;  // prompt.tokens: 0 is "no prompt"
            char where[300];
            config_where(where, sizeof where, &kv->e[i]);
            return petal_fail(err, PETAL_EINPUT, "%s: %s: the method (%s) has no %s; set %s or "
                              "choose a method with one", where, k, ast_method_name(m), fam[f].part,
                              fam[f].switch_on);
        }
    return PETAL_OK;
}

int trial_settings_resolve(trial_settings *ts, const config_kv *kv, petal_err *err) {
    memset(ts, 0, sizeof *ts);
    strcpy(ts->layout, "synthetic");
    strcpy(ts->size, "tiny");
    ts->fold = 1;
    ts->mel_bins = -1;
    ts->frames = ts->batch = ts->epochs = ts->specaug = -1;
    ts->lr = -1.0f;
    ts->weight_decay = 0.1f;
    ts->seed = 1;
    ts->aug = specaug_config_ast();
    ts->pool = POOL_ALL;
    ts->drill_seconds = 1.0;
    PETAL_ASSERT(ast_method_parse(&ts->method, "linear", err) == PETAL_OK);
    setting_value v;
    const setting_def *d;
    // The method preset first: its settings are the base the other keys modify.
    const config_entry *me = config_find(kv, "method");
    int st = me ? setting_parse(&v, &d, me, err) : PETAL_OK;
    if (me && !st) PETAL_ASSERT(ast_method_parse(&ts->method, me->value, err) == PETAL_OK);
    for (int i = 0; i < kv->n && !st; i++) {
        const config_entry *e = &kv->e[i];
        if ((st = setting_parse(&v, &d, e, err))) break;
        int n = (int)v.i;
        switch (d->id) {
        case SK_METHOD: break;
        case SK_DATASET_LAYOUT: snprintf(ts->layout, sizeof ts->layout, "%s", v.text); break;
        case SK_DATASET_ROOT: snprintf(ts->root, sizeof ts->root, "%s", v.text); break;
        case SK_DATASET_FOLD: ts->fold = n; break;
        case SK_DATASET_SHOTS: ts->shots = n; break;
        case SK_DATASET_FEWSHOT: ts->fewshot_first = n; break;
        case SK_DATASET_SPLIT_SEED: ts->split_seed = (uint64_t)v.i; break;
        case SK_FEATURES_FRAMES: ts->frames = n; break;
        case SK_FEATURES_MEL_BINS: ts->mel_bins = n; break;
        case SK_FEATURES_CACHE: snprintf(ts->cache, sizeof ts->cache, "%s", v.text); break;
        case SK_MODEL_BACKBONE: snprintf(ts->backbone, sizeof ts->backbone, "%s", v.text); break;
        case SK_MODEL_SIZE: snprintf(ts->size, sizeof ts->size, "%s", v.text); break;
        case SK_MODEL_POOL: ts->pool = (ast_pool)n; break;  // choices in ast_pool order
        case SK_MODEL_DTYPE: ts->bf16 = n == 1; break;     // fp32|bf16
        case SK_TRAIN_EPOCHS: ts->epochs = n; break;
        case SK_TRAIN_BATCH: ts->batch = n; break;
        case SK_TRAIN_LR: ts->lr = (float)v.x; break;
        case SK_TRAIN_WEIGHT_DECAY: ts->weight_decay = (float)v.x; break;
        case SK_TRAIN_SEED: ts->seed = (uint64_t)v.i; break;
        case SK_TRAIN_SPECAUG: ts->specaug = n; break;
        case SK_TRAIN_FREQ_MASK: ts->aug.freq_mask_max = n; break;
        case SK_TRAIN_TIME_MASK: ts->aug.time_mask_max = n; break;
        case SK_TRAIN_THREADS: ts->threads = n; break;
        case SK_DRILL: ts->drill = n; break;
        case SK_DRILL_SECONDS: ts->drill_seconds = v.x; break;
        default: {
            PETAL_ASSERT(d->flags & SETTING_METHOD);
            if ((st = ast_method_apply(&ts->method, d, &v, err))) {
                char where[300], msg[sizeof err->msg];
                config_where(where, sizeof where, e);
                snprintf(msg, sizeof msg, "%s", err->msg);
                st = petal_fail(err, PETAL_EINPUT, "%s: %s", where, msg);
            }
        }
        }
    }
    if (!st) st = check_method_keys(ts, kv, err);
    if (st) return st;
    if ((st = check_families(&ts->method, kv, err))) return st;
    for (size_t i = 0; i < sizeof recipe / sizeof recipe[0]; i++) {
        if (strcmp(recipe[i].layout, ts->layout)) continue;
        if (ts->frames < 0) ts->frames = recipe[i].frames;
        if (ts->batch < 0) ts->batch = recipe[i].batch;
        if (ts->epochs < 0) ts->epochs = recipe[i].epochs;
        if (ts->specaug < 0) ts->specaug = recipe[i].specaug;
    }
    if (ts->mel_bins < 0) ts->mel_bins = strcmp(ts->layout, "synthetic") ? 128 : 32;
    if (ts->lr < 0) ts->lr = ast_method_default_lr(&ts->method);
    if (strcmp(ts->layout, "synthetic") && !ts->root[0])
        return petal_fail(err, PETAL_EINPUT, "dataset.root is required for layout %s", ts->layout);
    if (!ts->cache[0] && ts->root[0])
        snprintf(ts->cache, sizeof ts->cache, "%.4000s/.petal-cache", ts->root);
    return PETAL_OK;
}

int trial_model_config(ast_config *cfg, const trial_settings *ts, int K, petal_err *err) {
    int st;
    if (ts->backbone[0]) {
        if ((st = backbone_read_config(cfg, NULL, ts->backbone, err))) return st;
        if (cfg->F != ts->mel_bins)
            return petal_fail(err, PETAL_EINPUT, "%s: backbone has %d mel bins, the trial %d",
                              ts->backbone, cfg->F, ts->mel_bins);
        cfg->frames = ts->frames;
        cfg->K = K;
        cfg->head_ln = 0;
    } else if ((st = ast_config_preset(cfg, ts->size, ts->frames, K, err))) {
        return st;
    }
    cfg->F = ts->mel_bins;
    cfg->pool = ts->pool;
    return ast_config_check(cfg, err);
}

const char *trial_status_name(trial_status s) {
    static const char *const names[] = {"done", "stopped", "diverged", "failed"};
    return names[s];
}

void trial_record_free(trial_record *r) {
    for (int i = 0; i < r->n_folds; i++) free(r->folds[i].history);
    free(r->folds);
    r->folds = NULL;
    r->n_folds = 0;
}

// The trainer's epoch hook, with the fold added for the trial's caller.
typedef struct {
    const trial_opts *opt;
    int fold;
} epoch_relay;

static void relay_epoch(void *ctx, int epoch, const epoch_record *e) {
    const epoch_relay *r = ctx;
    r->opt->on_epoch(r->opt->ctx, r->fold, epoch, e);
}

// Runs (or resumes) one fold into f. Returns a PETAL_* status; f->status says
// more (a diverged fold and one whose checkpoint could not be written both
// return PETAL_EFAIL).
static int run_fold(fold_record *f, trial_record *rec, const trial_settings *ts, const config_kv *kv,
                    const trial_opts *opt, petal_err *err) {
    trial_data d;
    int st = trial_data_load(&d, ts, f->fold, &opt->notes, err);
    if (st) return st;
    ast_config cfg;
    if ((st = trial_model_config(&cfg, ts, d.K, err))) goto done;
    trainer_config tc = {.epochs = ts->epochs, .batch = ts->batch, .seed = ts->seed,
                         .opt = adamw_defaults(ts->lr), .aug = ts->specaug ? &ts->aug : NULL,
                         .share_dir = opt->share_dir, .bf16 = ts->bf16};
    tc.opt.weight_decay = ts->weight_decay;
    trainer t;
    petal_err warn;
    if ((st = trainer_init(&t, &cfg, &ts->method, &tc, &d.split[0], &d.split[1], &d.split[2],
                           ts->backbone[0] ? ts->backbone : NULL, &warn, err)))
        goto done;
    if (warn.msg[0]) petal_note(&opt->notes, "%s", warn.msg);
    t.stop = opt->stop;
    t.stop_at_step = opt->stop_after_steps > 0 ? opt->stop_after_steps : -1;
    t.stop_at_epoch = opt->stop_after_epochs > 0 ? opt->stop_after_epochs : -1;
    t.labels = d.classes;
    epoch_relay relay = {opt, f->fold};
    if (opt->on_epoch) t.on_epoch = relay_epoch, t.ctx = &relay;
    char ckpt[TRIAL_PATH_MAX + 32], *ident = trial_identity(kv, f->fold);
    if (opt->ckpt_dir) {
        snprintf(ckpt, sizeof ckpt, "%s/fold%d.h5", opt->ckpt_dir, f->fold);
        if (access(ckpt, F_OK) == 0) {
            if ((st = checkpoint_load(&t, ckpt, ident, err))) goto free_trainer;
            petal_note(&opt->notes, "resuming fold %d from %s at epoch %d, step %ld%s", f->fold,
                       ckpt, t.epoch, t.step, t.done ? " (finished)" : "");
        }
    }
    rec->trainable = param_count(&t.m.params, 1);
    rec->total = param_count(&t.m.params, 0);
    ast_method_label(rec->label, sizeof rec->label, &t.m.method);
    petal_note(&opt->notes,
               "trial fold=%d method=%s train=%d valid=%d test=%d classes=%d trainable=%zu total=%zu",
               f->fold, ast_method_name(&ts->method), d.split[0].n, d.split[1].n, d.split[2].n, d.K,
               rec->trainable, rec->total);
    double t0 = petal_now();
    if (!t.done) st = trainer_run(&t, opt->ckpt_dir ? ckpt : NULL, ident, err);
    f->seconds = petal_now() - t0;
    f->epochs = t.epoch;
    f->history = petal_calloc((size_t)(t.epoch ? t.epoch : 1), sizeof *f->history);
    memcpy(f->history, t.hist, sizeof *f->history * (size_t)t.epoch);
    f->best_epoch = t.best_epoch;
    f->best_valid_acc = t.valid ? t.best_acc : NAN;
    if (st == PETAL_STOPPED)
        petal_fail(err, st, "fold %d stopped at step %ld%s%s", f->fold, t.step,
                   opt->ckpt_dir ? ", checkpoint written to " : " (no checkpoint folder: nothing saved)",
                   opt->ckpt_dir ? ckpt : "");
    if (st == PETAL_EFAIL && t.diverged) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        petal_fail(err, st, "fold %d diverged: %s", f->fold, why);
        f->status = TRIAL_DIVERGED;
    }
    if (!st) {
        f->test_acc = t.test_acc;
        f->test_loss = t.test_loss;
    }
    if (!st && opt->save_backbone) {
        // The best-validation state, LoRA folded into its projections, with the
        // classifier and the class names: a backbone for later trials and for predict.
        param_unpack(&t.m.params, t.best, PARAM_STATE);
        ast_lora_merge(&t.m);
        st = backbone_save(opt->save_backbone, &t.m, 1, d.classes, err);
        if (!st) petal_note(&opt->notes, "backbone written to %s", opt->save_backbone);
    }
free_trainer:
    free(ident);
    trainer_free(&t);
done:
    trial_data_free(&d);
    return st;
}

// Checks what the trial's options ask of its settings before any work.
static int check_opts(int n_folds, const trial_settings *ts, const trial_opts *opt,
                      petal_err *err) {
    if (opt->ckpt_dir && mkdir(opt->ckpt_dir, 0777) && access(opt->ckpt_dir, W_OK))
        return petal_fail(err, PETAL_EINPUT, "%s: cannot create or write the checkpoint folder",
                          opt->ckpt_dir);
    if (!opt->save_backbone) return PETAL_OK;
    if (ts->fold == 0 && n_folds > 1)
        return petal_fail(err, PETAL_EINPUT, "--save-backbone takes one fold, not dataset.fold=all");
    const ast_method *me = &ts->method;
    if (me->adapter.at_mhsa || me->adapter.at_ffn || me->prompt.tokens || me->prefix.tokens ||
        me->moa.kind != MOA_NONE)
        return petal_fail(err, PETAL_EINPUT,
                          "--save-backbone: a %s model has tensors a backbone file cannot hold "
                          "(only full, linear, BitFit and LoRA, merged, export); predict from its "
                          "checkpoint instead (petal predict --checkpoint)",
                          ast_method_name(me));
    return PETAL_OK;
}

int trial_run(trial_record *rec, const config_kv *kv, const trial_opts *opt, petal_err *err) {
    memset(rec, 0, sizeof *rec);
    double t0 = petal_now();
    trial_settings ts;
    int n_folds = 1;
    int st = trial_settings_resolve(&ts, kv, err);
    if (!st && ts.drill)
        st = petal_fail(err, PETAL_EINPUT, "drill: drills run only inside sweeps (petal sweep)");
    if (!st) st = check_model(&ts, kv, err);
    if (!st && trial_cache_usable(&ts, err)) {  // before the data loads, not after
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        st = petal_fail(err, PETAL_EINPUT, "features.cache %s", why);
    }
    if (!st && ts.fold == 0) st = trial_data_folds(&n_folds, &ts, err);
    if (!st) st = check_opts(n_folds, &ts, opt, err);
    if (!st) {
        int first = ts.fold ? ts.fold : 1, last = ts.fold ? ts.fold : n_folds;
        rec->folds = petal_calloc((size_t)(last - first + 1), sizeof *rec->folds);
        for (int k = first; k <= last && !st; k++) {
            fold_record *f = &rec->folds[rec->n_folds++];
            f->fold = k;
            st = run_fold(f, rec, &ts, kv, opt, err);
            if (st && f->status == TRIAL_DONE)
                f->status = st == PETAL_STOPPED ? TRIAL_STOPPED : TRIAL_FAILED;
            if (st) snprintf(f->error, sizeof f->error, "%s", err->msg);
            if (opt->on_fold) opt->on_fold(opt->ctx, f);
        }
    }
    // Over folds: the worst status; mean and std of the finished folds.
    int done = 0;
    for (int i = 0; i < rec->n_folds; i++) {
        const fold_record *f = &rec->folds[i];
        if (f->status > rec->status) rec->status = f->status;
        if (f->status != TRIAL_DONE) continue;
        done++;
        rec->test_acc_mean += f->test_acc;
        rec->best_valid_acc_mean += f->best_valid_acc;
    }
    if (st && rec->status == TRIAL_DONE) rec->status = st == PETAL_STOPPED ? TRIAL_STOPPED : TRIAL_FAILED;
    if (st) snprintf(rec->error, sizeof rec->error, "%s", err->msg);
    if (done) rec->test_acc_mean /= done, rec->best_valid_acc_mean /= done;
    for (int i = 0; i < rec->n_folds; i++) {
        double dv = rec->folds[i].test_acc - rec->test_acc_mean;
        if (rec->folds[i].status == TRIAL_DONE) rec->test_acc_std += dv * dv;
    }
    rec->test_acc_std = done > 1 ? sqrt(rec->test_acc_std / (done - 1)) : 0.0;
    rec->seconds = petal_now() - t0;
    rec->peak_rss_mib = petal_peak_rss_mib();
    return st;
}
