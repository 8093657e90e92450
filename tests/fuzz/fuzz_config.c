// libFuzzer target: the trial YAML reader and the settings table behind it
// (config_parse_yaml -> trial_settings_resolve -> trial_identity), as
// `petal train FILE` reads a trial file. Any crash, leak, sanitizer report
// or hang is a bug; errors are the expected outcome for most inputs.
#include <string.h>

#include "core/config.h"
#include "core/trial.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    config_kv kv = {0};
    petal_err err;
    if (config_parse_yaml(&kv, text, "fuzz.yaml", &err) == PETAL_OK) {
        trial_settings ts;
        if (trial_settings_resolve(&ts, &kv, &err) == PETAL_OK) {
            // A valid trial's identity text (what checkpoints store and predict
            // reads back) must parse to the same identity.
            char *id = trial_identity(&kv, 1);
            config_kv again = {0};
            if (config_parse_yaml(&again, id, "identity", &err) != PETAL_OK) abort();
            char *id2 = trial_identity(&again, 1);
            if (strcmp(id, id2)) abort();
            free(id2);
            free(id);
            config_free(&again);
        }
    }
    config_free(&kv);
    free(text);
    return 0;
}
