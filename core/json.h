// A small strict JSON reader (RFC 8259) for the files petal imports: HF
// config.json and the header of a .safetensors file. The whole text becomes a
// tree; every value remembers where it starts so that errors can name the
// file, line and column.
#ifndef PETAL_JSON_H
#define PETAL_JSON_H
#include <stddef.h>

#include "core/common.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    int line, col;       // 1-based position of the value's first character
    double num;          // JSON_NUMBER; JSON_BOOL: 0 or 1
    char *str;           // JSON_STRING: UTF-8, NUL-terminated (\u0000 is rejected)
    size_t len;          // JSON_STRING: bytes; JSON_ARRAY / JSON_OBJECT: members
    json_value *items;   // JSON_ARRAY / JSON_OBJECT: len values, in file order
    char **keys;         // JSON_OBJECT: len keys, unique
};

// Parses text[0..n) into *out (free with json_free). A syntax error, a
// duplicate key or nesting deeper than 64 -> PETAL_EINPUT with
// "<source>:<line>:<column>: <what>".
int json_parse(json_value **out, const char *text, size_t n, const char *source, petal_err *err);
void json_free(json_value *v);
// Member of an object, or NULL (also when obj is not an object).
const json_value *json_get(const json_value *obj, const char *key);
// True when v is a number with an integral value in [lo, hi]; then *out holds it.
int json_int(const json_value *v, long long *out, long long lo, long long hi);
// Short name of a value's type ("string", "object", ...), for messages.
const char *json_type_name(json_type t);
#endif
