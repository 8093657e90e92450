// A sweep spec (YAML, libyaml): a study's base settings, a grid of axes (with
// per-method axes), exclude / include, optional sampled ranges and early
// stopping, expanded into trials. Keys are the trial keys of the settings
// table (core/settings.h), so a spec speaks the language of trial files.
// Every trial carries its settings (each entry remembers its spec position,
// so errors name file:line:column), its identity (core/settings.h
// trial_identity) and its id (XXH3-64 of the identity, 16 hex digits):
// editing a spec (adding axis values, reordering axes) keeps the ids, and so
// the results, of trials already run.
#ifndef PETAL_SWEEP_SPEC_H
#define PETAL_SWEEP_SPEC_H
#include "core/config.h"

#define SWEEP_ID_LEN 16
// The most trials one spec may expand to: far beyond any study that can be
// run (each trial trains a model), small enough that the expansion stays
// within memory and seconds. A larger grid is an input error before anything
// is built.
#define SWEEP_MAX_TRIALS 100000

typedef struct {
    char id[SWEEP_ID_LEN + 1];
    config_kv kv;    // every setting of the trial, with spec positions
    char *identity;  // canonical settings text (what the id hashes)
    char *origin;    // where it came from: "grid", "include[2]", "sample 3 of lora"
} sweep_trial;

typedef enum { EARLY_NONE = 0, EARLY_ASHA, EARLY_MEDIAN } early_kind;
typedef struct {
    early_kind kind;
    int min_epochs, eta;  // ASHA rungs at min_epochs * eta^k
} early_stop;

typedef struct {
    char *path;      // the spec file
    char *text;      // its contents
    char hash[SWEEP_ID_LEN + 1];  // XXH3-64 of the text
    char study[128];
    sweep_trial *trials;  // in expansion order
    int n;
    const char **varying;  // keys whose values differ between trials (settings-table order)
    int nvarying;
    int sample_n;          // points drawn per method entry (0: no sampling)
    early_stop early;
} sweep_spec;

// Reads, checks and expands the spec. Errors (PETAL_EINPUT) name file:line:column:
// YAML syntax, unknown keys (with the nearest valid one), wrong types, values out
// of range, empty axes, duplicate keys, unset ${VAR}s, method keys of a method
// that lacks them, trials that come out twice.
int sweep_spec_load(sweep_spec *s, const char *path, petal_err *err);
// The same from text in memory (name stands for the file in messages).
int sweep_spec_parse(sweep_spec *s, const char *text, const char *name, petal_err *err);
void sweep_spec_free(sweep_spec *s);

// XXH3-64 of text as 16 lower-case hex digits (the trial id of an identity).
void sweep_hash(char out[SWEEP_ID_LEN + 1], const char *text, size_t n);

// True when trial `id` belongs to shard k of nshards (array jobs): its id, a
// hash, modulo nshards, so a trial's shard never changes with the spec's order.
int sweep_in_shard(const char *id, int k, int nshards);
#endif
