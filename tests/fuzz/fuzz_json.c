// libFuzzer target: the strict JSON reader (HF config.json, safetensors
// headers), walking the tree it returns.
#include <string.h>

#include "core/json.h"

static size_t walk(const json_value *v, int depth) {
    if (depth > 80) abort();  // json_parse promises at most 64 levels
    size_t n = 1;
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT)
        for (size_t i = 0; i < v->len; i++) {
            if (v->type == JSON_OBJECT && strlen(v->keys[i]) > 1u << 30) abort();
            n += walk(&v->items[i], depth + 1);
        }
    if (v->type == JSON_STRING && strlen(v->str) != v->len) abort();
    return n;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    json_value *root = NULL;
    petal_err err;
    if (json_parse(&root, (const char *)data, size, "fuzz.json", &err) == PETAL_OK) {
        walk(root, 0);
        json_free(root);
    }
    return 0;
}
