// `--name value` flag parsing with one-line errors.
#include "cmd/args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int args_flag(args *a, const char *name, const char **value) {
    if (strcmp(a->argv[a->i], name)) return 0;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "petal: %s needs a value\n", name);
        a->bad = 1;
        *value = NULL;
        return 1;
    }
    *value = a->argv[++a->i];
    return 1;
}

int args_int(args *a, const char *name, int *out, int lo, int hi) {
    const char *v;
    if (!args_flag(a, name, &v)) return 0;
    if (!v) return 1;
    long x;
    if (petal_parse_long(&x, v, lo, hi)) {
        fprintf(stderr, "petal: %s expects an integer in [%d, %d], got '%s'\n", name, lo, hi, v);
        a->bad = 1;
    } else {
        *out = (int)x;
    }
    return 1;
}

int args_float(args *a, const char *name, float *out, float lo, float hi) {
    const char *v;
    if (!args_flag(a, name, &v)) return 0;
    if (!v) return 1;
    double x;
    if (petal_parse_double(&x, v) || !(x >= lo && x <= hi)) {
        fprintf(stderr, "petal: %s expects a number in [%g, %g], got '%s'\n", name, lo, hi, v);
        a->bad = 1;
    } else {
        *out = (float)x;
    }
    return 1;
}

int args_switch(args *a, const char *name, int *out) {
    if (strcmp(a->argv[a->i], name)) return 0;
    *out = 1;
    return 1;
}

void args_warn(const petal_err *warn) {
    if (warn->msg[0]) fprintf(stderr, "petal: %s\n", warn->msg);
}

void args_unknown(args *a, const char *cmd) {
    fprintf(stderr, "petal %s: unknown option '%s' (see petal %s --help)\n", cmd, a->argv[a->i],
            cmd);
    a->bad = 1;
}

int args_model(args *a, model_opts *o) {
    const char *v;
    if (args_flag(a, "--size", &v)) o->size = v ? v : o->size;
    else if (args_flag(a, "--method", &v)) o->method = v ? v : o->method;
    else if (args_flag(a, "--pool", &v)) o->pool = v ? v : o->pool;
    else if (args_flag(a, "--set", &v)) {
        if (v && o->nsets == (int)(sizeof o->sets / sizeof o->sets[0])) {
            fprintf(stderr, "petal: too many --set options\n");
            a->bad = 1;
        } else if (v) {
            o->sets[o->nsets++] = v;
        }
    }
    else if (args_int(a, "--frames", &o->frames, 16, 100000)) {}
    else if (args_int(a, "--classes", &o->classes, 2, 100000)) {}
    else return 0;
    return 1;
}

int model_opts_resolve(ast_config *cfg, ast_method *m, const model_opts *o, petal_err *err) {
    int st = ast_config_preset(cfg, o->size, o->frames, o->classes, err);
    if (!st) st = ast_pool_parse(&cfg->pool, o->pool, err);
    if (!st) st = ast_method_parse(m, o->method, err);
    for (int i = 0; i < o->nsets && !st; i++) {
        char key[64];
        const char *eq = strchr(o->sets[i], '=');
        if (!eq || eq == o->sets[i] || (size_t)(eq - o->sets[i]) >= sizeof key)
            return petal_fail(err, PETAL_EINPUT, "--set expects key=value, got '%s'", o->sets[i]);
        memcpy(key, o->sets[i], (size_t)(eq - o->sets[i]));
        key[eq - o->sets[i]] = 0;
        st = ast_method_set(m, key, eq + 1, err);
    }
    return st;
}

const char *args_backbone_cache(const char *given) {
    static char dflt[4096];
    const char *v = given ? given : getenv("PETAL_BACKBONE_CACHE");
    if (!v || !*v) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dflt, sizeof dflt, "%s/petal-backbones-%ld", tmp && *tmp ? tmp : "/tmp",
                 (long)geteuid());
        v = dflt;
    }
    return strcmp(v, "off") ? v : NULL;
}
