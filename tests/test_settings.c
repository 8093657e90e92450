// The settings table (core/settings.c): every type's conversion and its errors,
// unknown keys with the nearest known one, the trial identity (normalised,
// order-free, without threads and cache folders), and trial resolution with
// file:line:column in its errors.
#include <string.h>

#include "core/settings.h"
#include "core/trial.h"
#include "tests/check.h"

static int parse(const char *key, const char *text, setting_value *v, petal_err *err) {
    const setting_def *d;
    return setting_parse_text(v, &d, key, text, err);
}

static void test_types(void) {
    setting_value v;
    petal_err err;
    CHECK(parse("train.epochs", "12", &v, &err) == PETAL_OK && v.i == 12, "int");
    CHECK(parse("train.epochs", "0", &v, &err) == PETAL_EINPUT &&
              strstr(err.msg, "train.epochs expects an integer in [1, 100000], got '0'"),
          "int below range: %s", err.msg);
    CHECK(parse("train.epochs", "3x", &v, &err) == PETAL_EINPUT, "int with junk");
    CHECK(parse("train.epochs", "", &v, &err) == PETAL_EINPUT, "empty int");
    CHECK(parse("dataset.fold", "all", &v, &err) == PETAL_OK && v.i == 0, "fold all");
    CHECK(parse("train.seed", "all", &v, &err) == PETAL_EINPUT, "only dataset.fold takes all");
    CHECK(parse("train.lr", "1e-3", &v, &err) == PETAL_OK && v.x == 1e-3, "number");
    CHECK(parse("train.lr", "nan", &v, &err) == PETAL_EINPUT, "nan refused");
    CHECK(parse("train.lr", "inf", &v, &err) == PETAL_EINPUT, "inf refused");
    CHECK(parse("train.lr", "-1", &v, &err) == PETAL_EINPUT, "negative lr refused");
    CHECK(parse("lora.rr", "0", &v, &err) == PETAL_EINPUT && strstr(err.msg, "> 0"),
          "open lower bound: %s", err.msg);
    CHECK(parse("train.specaug", "yes", &v, &err) == PETAL_OK && v.i == 1, "bool yes");
    CHECK(parse("train.specaug", "false", &v, &err) == PETAL_OK && v.i == 0, "bool false");
    CHECK(parse("train.specaug", "maybe", &v, &err) == PETAL_EINPUT &&
              strstr(err.msg, "true or false"), "bool junk: %s", err.msg);
    CHECK(parse("model.pool", "cls_dist", &v, &err) == PETAL_OK && v.i == POOL_CLS_DIST,
          "choices follow ast_pool's order");
    CHECK(parse("base", "bitfit", &v, &err) == PETAL_OK && v.i == METHOD_BITFIT,
          "base follows ast_base's order");
    CHECK(parse("dataset.layout", "esc", &v, &err) == PETAL_EINPUT &&
              strstr(err.msg, "esc50, us8k, gsc, fsc, folder or synthetic"),
          "choices listed: %s", err.msg);
    CHECK(parse("dataset.root", "", &v, &err) == PETAL_EINPUT, "empty text refused");
    CHECK(parse("lora.rnak", "4", &v, &err) == PETAL_EINPUT && strstr(err.msg, "unknown setting 'lora.rnak'") &&
              strstr(err.msg, "did you mean lora.rank?"),
          "nearest key: %s", err.msg);
    CHECK(!strcmp(setting_nearest("epochs"), "train.epochs"), "the part after the dot");
    CHECK(setting_nearest("completely.different") == NULL, "no suggestion when nothing is near");
    // every table row is at its id, and every key is found
    int ok = 1;
    for (int i = 0; i < SK_COUNT; i++)
        ok &= settings_table[i].id == (setting_id)i && setting_find(settings_table[i].key) == &settings_table[i];
    CHECK(ok, "table rows sit at their ids");
}

static char *identity_of(const char *yaml, int fold) {
    config_kv kv = {0};
    petal_err err;
    PETAL_ASSERT(config_parse_yaml(&kv, yaml, "t", &err) == PETAL_OK);
    char *id = trial_identity(&kv, fold);
    config_free(&kv);
    return id;
}

static void test_identity(void) {
    char *a = identity_of("method: lora\ntrain: {lr: 1e-3, seed: 01, threads: 2}\nlora.rank: 4\n", 0);
    char *b = identity_of("lora.rank: 4\ntrain.lr: 0.001\ntrain.seed: 1\nmethod: lora\n"
                          "features.cache: /elsewhere\n", 0);
    char *c = identity_of("lora.rank: 8\ntrain.lr: 0.001\ntrain.seed: 1\nmethod: lora\n", 0);
    CHECK(!strcmp(a, b), "same trial, same identity:\n%s---\n%s", a, b);
    CHECK(strcmp(a, c), "another rank, another identity");
    CHECK(!strstr(a, "threads") && !strstr(b, "cache"), "threads and the cache are not identity");
    char *f2 = identity_of("dataset.fold: all\nmethod: lora\n", 2);
    char *g2 = identity_of("method: lora\ndataset.fold: 2\n", 0);
    CHECK(!strcmp(f2, g2), "fold 2 of an all-folds trial is fold 2's trial");
    // A value holding line breaks and a tab (a plain scalar folded over blank
    // lines; fuzz_config found it) reads back from the identity to itself.
    char *h = identity_of("dataset: {layout: esc50, root: dat\n\n\n\na, shots: 8}\nmethod: \"x\\ty\"\n", 0);
    char *h2 = identity_of(h, 0);
    CHECK(!strcmp(h, h2) && strstr(h, "dat\\x0a\\x0a\\x0aa") && strstr(h, "x\\x09y"),
          "control characters survive the identity's round trip:\n%s---\n%s", h, h2);
    free(a), free(b), free(c), free(f2), free(g2), free(h), free(h2);
}

static void test_resolve(void) {
    config_kv kv = {0};
    petal_err err;
    trial_settings ts;
    PETAL_ASSERT(config_parse_yaml(&kv, "dataset:\n  layout: esc50\n  root: /data\ntrain:\n  batch: x\n",
                                   "t.yaml", &err) == PETAL_OK);
    CHECK(trial_settings_resolve(&ts, &kv, &err) == PETAL_EINPUT &&
              strstr(err.msg, "t.yaml:5:10: train.batch expects an integer"),
          "file:line:column: %s", err.msg);
    config_free(&kv);
    PETAL_ASSERT(config_parse_yaml(&kv, "dataset: {layout: esc50, root: /data}\nmethod: lora\nlora.rank: 6\n",
                                   "t.yaml", &err) == PETAL_OK);
    CHECK(trial_settings_resolve(&ts, &kv, &err) == PETAL_OK, "%s", err.msg);
    CHECK(ts.frames == 500 && ts.batch == 32 && ts.epochs == 50 && ts.specaug == 1,
          "ESC-50 recipe defaults");
    CHECK(ts.method.lora.rank == 6 && ts.method.lora.targets == (LORA_Q | LORA_V) && ts.lr == 5e-3f,
          "method preset, its key, its learning rate");
    CHECK(!strcmp(ts.cache, "/data/.petal-cache"), "cache under the root");
    config_free(&kv);
    PETAL_ASSERT(config_parse_yaml(&kv, "method: lora\nadapter.kernel: 0\n", "m.yaml", &err) == PETAL_OK);
    CHECK(trial_settings_resolve(&ts, &kv, &err) == PETAL_EINPUT && strstr(err.msg, "m.yaml:2:17: adapter.kernel"),
          "method keys name their position: %s", err.msg);
    config_free(&kv);
}

int main(void) {
    test_types();
    test_identity();
    test_resolve();
    return check_done("settings");
}
