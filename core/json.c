// ==== JSON reader: recursive descent over a byte buffer into a value tree =====
#include "core/json.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t n, pos;
    int line;          // current line (1-based)
    size_t line_start; // offset of its first byte
    int depth;
    const char *source;
    petal_err *err;
} parser;

static void *grow(void *p, size_t bytes) {
    void *q = realloc(p, bytes);
    if (!q) {
        fprintf(stderr, "petal: out of memory (%zu bytes) reading JSON\n", bytes);
        abort();
    }
    return q;
}

static int col_of(const parser *p, size_t pos) { return (int)(pos - p->line_start) + 1; }

static int fail_at(parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(parser *p, size_t pos, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return petal_fail(p->err, PETAL_EINPUT, "%s:%d:%d: %s", p->source, p->line, col_of(p, pos),
                      what);
}

// What the parser sees at pos, for messages.
static const char *seen(const parser *p, char *buf, size_t n) {
    if (p->pos >= p->n) return "end of input";
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x20 && c < 0x7f) snprintf(buf, n, "'%c'", c);
    else snprintf(buf, n, "byte 0x%02x", c);
    return buf;
}

// Whitespace is the only place a newline may occur, so lines are counted here.
static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c == '\n') {
            p->pos++;
            p->line++;
            p->line_start = p->pos;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            p->pos++;
        } else {
            break;
        }
    }
}

static int parse_value(parser *p, json_value *v);

static int hex4(const parser *p, size_t at, unsigned *out) {
    unsigned x = 0;
    if (at + 4 > p->n) return 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[at + (size_t)i];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = x;
    return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

// p->pos at the opening quote. Decoded text is never longer than the source.
static int parse_string(parser *p, char **out, size_t *len) {
    size_t start = p->pos++;
    size_t end = start + 1;
    while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->n) return fail_at(p, start, "unterminated string");
    char *o = petal_malloc(end - start);
    size_t k = 0;
    while (p->s[p->pos] != '"') {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            free(o);
            return fail_at(p, p->pos, "control character 0x%02x in a string (escape it)", c);
        }
        if (c != '\\') {
            o[k++] = (char)c;
            p->pos++;
            continue;
        }
        size_t esc = p->pos;
        char e = p->s[p->pos + 1];
        p->pos += 2;
        switch (e) {
        case '"': o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; break;
        case '/': o[k++] = '/'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(p, p->pos, &cp)) {
                free(o);
                return fail_at(p, esc, "bad \\u escape (four hex digits expected)");
            }
            p->pos += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {  // high surrogate: a low one must follow
                if (p->pos + 6 > p->n || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                    !hex4(p, p->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                    free(o);
                    return fail_at(p, esc, "unpaired UTF-16 surrogate \\u%04x", cp);
                }
                p->pos += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                free(o);
                return fail_at(p, esc, "unpaired UTF-16 surrogate \\u%04x", cp);
            } else if (cp == 0) {
                free(o);
                return fail_at(p, esc, "\\u0000 in a string is not supported");
            }
            k += put_utf8(o + k, cp);
            break;
        }
        default:
            free(o);
            return fail_at(p, esc, "unknown escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
        }
    }
    p->pos++;  // closing quote
    o[k] = 0;
    *out = o;
    *len = k;
    return PETAL_OK;
}

static int parse_number(parser *p, json_value *v) {
    size_t start = p->pos, i = p->pos;
    const char *s = p->s;
#define DIGIT(j) ((j) < p->n && s[j] >= '0' && s[j] <= '9')
    if (i < p->n && s[i] == '-') i++;
    if (!DIGIT(i)) return fail_at(p, start, "bad number");
    if (s[i] == '0') i++;
    else while (DIGIT(i)) i++;
    if (i < p->n && s[i] == '.') {
        i++;
        if (!DIGIT(i)) return fail_at(p, start, "bad number (digits expected after '.')");
        while (DIGIT(i)) i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-')) i++;
        if (!DIGIT(i)) return fail_at(p, start, "bad number (digits expected in the exponent)");
        while (DIGIT(i)) i++;
    }
#undef DIGIT
    char buf[128];
    if (i - start >= sizeof buf) return fail_at(p, start, "number longer than %zu characters",
                                                sizeof buf - 1);
    memcpy(buf, s + start, i - start);
    buf[i - start] = 0;
    v->type = JSON_NUMBER;
    v->num = strtod(buf, NULL);  // the grammar above is a subset of strtod's
    p->pos = i;
    return PETAL_OK;
}

static int literal(parser *p, const char *word) {
    size_t k = strlen(word);
    return p->pos + k <= p->n && !memcmp(p->s + p->pos, word, k);
}

static int key_cmp(const void *a, const void *b) {
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

// Duplicate keys are rejected (safetensors' own reader does the same): sort
// pointers to the keys and compare neighbours.
static int check_unique(parser *p, const json_value *v) {
    if (v->len < 2) return PETAL_OK;
    char ***ix = petal_malloc(v->len * sizeof *ix);
    for (size_t i = 0; i < v->len; i++) ix[i] = &v->keys[i];
    qsort(ix, v->len, sizeof *ix, key_cmp);
    int st = PETAL_OK;
    for (size_t i = 1; i < v->len && !st; i++)
        if (!strcmp(*ix[i], *ix[i - 1]))
            st = petal_fail(p->err, PETAL_EINPUT, "%s:%d:%d: duplicate key \"%s\" in this object",
                            p->source, v->line, v->col, *ix[i]);
    free(ix);
    return st;
}

static int parse_container(parser *p, json_value *v, int object) {
    char close = object ? '}' : ']', b[32];
    size_t open = p->pos++;
    if (++p->depth > JSON_MAX_DEPTH)
        return fail_at(p, open, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    size_t cap = 0;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return PETAL_OK;
    }
    for (;;) {
        if (v->len == cap) {
            cap = cap ? 2 * cap : 8;
            v->items = grow(v->items, cap * sizeof *v->items);
            if (object) v->keys = grow(v->keys, cap * sizeof *v->keys);
        }
        json_value *it = &v->items[v->len];
        memset(it, 0, sizeof *it);
        skip_ws(p);
        if (object) {
            if (p->pos >= p->n || p->s[p->pos] != '"')
                return fail_at(p, p->pos, "expected a string key, got %s", seen(p, b, sizeof b));
            size_t klen;
            char *key;
            int st = parse_string(p, &key, &klen);
            if (st) return st;
            v->keys[v->len] = key;
            v->len++;  // counted now so that a failure below frees the key
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':')
                return fail_at(p, p->pos, "expected ':' after the key \"%s\", got %s", key,
                               seen(p, b, sizeof b));
            p->pos++;
        } else {
            v->len++;
        }
        int st = parse_value(p, it);
        if (st) return st;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == close) {
            p->pos++;
            break;
        }
        return fail_at(p, p->pos, "expected ',' or '%c', got %s", close, seen(p, b, sizeof b));
    }
    p->depth--;
    return object ? check_unique(p, v) : PETAL_OK;
}

static int parse_value(parser *p, json_value *v) {
    char b[32];
    skip_ws(p);
    v->line = p->line;
    v->col = col_of(p, p->pos);
    if (p->pos >= p->n) return fail_at(p, p->pos, "expected a value, got end of input");
    char c = p->s[p->pos];
    if (c == '{' || c == '[') return parse_container(p, v, c == '{');
    if (c == '"') {
        v->type = JSON_STRING;
        return parse_string(p, &v->str, &v->len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
    if (literal(p, "true") || literal(p, "false")) {
        v->type = JSON_BOOL;
        v->num = c == 't';
        p->pos += c == 't' ? 4 : 5;
        return PETAL_OK;
    }
    if (literal(p, "null")) {
        v->type = JSON_NULL;
        p->pos += 4;
        return PETAL_OK;
    }
    return fail_at(p, p->pos, "expected a value, got %s", seen(p, b, sizeof b));
}

static void free_contents(json_value *v) {
    free(v->str);
    for (size_t i = 0; i < v->len && (v->type == JSON_ARRAY || v->type == JSON_OBJECT); i++) {
        free_contents(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

void json_free(json_value *v) {
    if (!v) return;
    free_contents(v);
    free(v);
}

int json_parse(json_value **out, const char *text, size_t n, const char *source, petal_err *err) {
    parser p = {.s = text, .n = n, .line = 1, .source = source, .err = err};
    if (n >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) p.pos = p.line_start = 3;  // UTF-8 BOM
    json_value *v = petal_calloc(1, sizeof *v);
    int st = parse_value(&p, v);
    if (!st) {
        skip_ws(&p);
        if (p.pos < p.n) st = fail_at(&p, p.pos, "unexpected content after the JSON value");
    }
    if (st) {
        json_free(v);
        *out = NULL;
        return st;
    }
    *out = v;
    return PETAL_OK;
}

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->len; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

int json_int(const json_value *v, long long *out, long long lo, long long hi) {
    // 2^53: every integer below is exact in a double
    if (!v || v->type != JSON_NUMBER || !(v->num >= -9007199254740992.0) ||
        !(v->num <= 9007199254740992.0))
        return 0;
    long long x = (long long)v->num;
    if ((double)x != v->num || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

const char *json_type_name(json_type t) {
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    return names[t];
}
