// libFuzzer target: the sweep spec parser and expander (sweep_spec_parse: YAML
// -> base, axes, method entries, exclude / include, sampled ranges, early
// stopping -> trials with ids), as `petal sweep SPEC` reads a spec. Any crash,
// leak, sanitizer report or hang is a bug; errors are the expected outcome for
// most inputs. What the parser accepts must hold: every trial's id is the hash
// of its identity, and no two trials share one.
#include <string.h>

#include "sweeps/spec.h"

static int cmp_id(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    if (strlen(text) != size) {  // a NUL inside: sweep_spec_load refuses such files
        free(text);
        return 0;
    }
    sweep_spec s;
    petal_err err;
    if (sweep_spec_parse(&s, text, "fuzz.yaml", &err) == PETAL_OK) {
        if (s.n < 1 || s.n > SWEEP_MAX_TRIALS) abort();
        char **ids = malloc(sizeof *ids * (size_t)s.n);
        for (int i = 0; i < s.n; i++) {
            char id[SWEEP_ID_LEN + 1];
            sweep_hash(id, s.trials[i].identity, strlen(s.trials[i].identity));
            if (strcmp(id, s.trials[i].id)) abort();
            ids[i] = s.trials[i].id;
        }
        qsort(ids, (size_t)s.n, sizeof *ids, cmp_id);
        for (int i = 1; i < s.n; i++)
            if (!strcmp(ids[i], ids[i - 1])) abort();
        free(ids);
        sweep_spec_free(&s);
    }
    free(text);
    return 0;
}
