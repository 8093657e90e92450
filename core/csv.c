// CSV reader: the whole file is read into one buffer and unquoted in place,
// so a table is two allocations plus the field and line index.
#include "core/csv.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>


static int slurp(char **out, size_t *n, const char *path, petal_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return petal_fail(err, PETAL_EINPUT, "%s: cannot open (%s)", path, strerror(errno));
    size_t cap = 0, len = 0;
    char *buf = NULL;
    for (;;) {
        buf = petal_grow(buf, &cap, len + 65536, 1);
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return petal_fail(err, PETAL_EINPUT, "%s: read error", path);
    }
    buf[len] = '\0';
    *out = buf;
    *n = len;
    return PETAL_OK;
}

int csv_read(csv_table *t, const char *path, petal_err *err) {
    memset(t, 0, sizeof *t);
    snprintf(t->path, sizeof t->path, "%s", path);
    size_t n = 0;
    int st = slurp(&t->text, &n, path, err);
    if (st) return st;

    char *s = t->text;
    size_t p = 0, line = 1;
    if (n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        p = 3;  // byte-order mark written by spreadsheet exports

    size_t fcap = 0, nf = 0, lcap = 0, nrow = 0;
    int row_fields = 0;
    while (p < n) {
        // Blank lines (e.g. the final newline) are not rows.
        if (row_fields == 0 && (s[p] == '\n' || s[p] == '\r')) {
            if (s[p] == '\n') line++;
            p++;
            continue;
        }
        if (row_fields == 0) {
            t->lines = petal_grow(t->lines, &lcap, nrow + 1, sizeof *t->lines);
            t->lines[nrow] = (int)line;
        }
        size_t start = p, w = p;
        char end;
        if (s[p] == '"') {
            size_t qline = line;
            p++;
            for (;;) {
                if (p >= n) {
                    csv_free(t);
                    return petal_fail(err, PETAL_EINPUT, "%s:%zu: unterminated quoted field",
                                      path, qline);
                }
                if (s[p] == '"') {
                    if (p + 1 < n && s[p + 1] == '"') {
                        s[w++] = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (s[p] == '\n') line++;
                s[w++] = s[p++];
            }
            end = p < n ? s[p] : '\0';
            if (end != ',' && end != '\n' && end != '\r' && end != '\0') {
                csv_free(t);
                return petal_fail(err, PETAL_EINPUT,
                                  "%s:%zu: unexpected '%c' after a quoted field", path, line, end);
            }
        } else {
            while (p < n && s[p] != ',' && s[p] != '\n' && s[p] != '\r') p++;
            w = p;
            end = p < n ? s[p] : '\0';
        }
        s[w] = '\0';
        t->fields = petal_grow(t->fields, &fcap, nf + 1, sizeof *t->fields);
        t->fields[nf++] = s + start;
        row_fields++;
        if (end == ',') {
            p++;
            if (p >= n) {  // "a,b," at end of file: the last field is empty
                t->fields = petal_grow(t->fields, &fcap, nf + 1, sizeof *t->fields);
                t->fields[nf++] = s + n;
                row_fields++;
            } else {
                continue;
            }
        }
        // End of row: check its width against the header.
        if (nrow == 0) {
            t->ncols = row_fields;
        } else if (row_fields != t->ncols) {
            int ln = t->lines[nrow], ncols = t->ncols;  // csv_free clears ncols
            csv_free(t);
            return petal_fail(err, PETAL_EINPUT, "%s:%d: %d fields, the header has %d", path,
                              ln, row_fields, ncols);
        }
        nrow++;
        row_fields = 0;
        // s[p] (the delimiter) was overwritten by the terminator: use end.
        if (end == '\r') {
            p++;
            if (p < n && s[p] == '\n') p++;
            line++;
        } else if (end == '\n') {
            p++;
            line++;
        }
    }
    if (nrow == 0) {
        csv_free(t);
        return petal_fail(err, PETAL_EINPUT, "%s: empty file (no header)", path);
    }
    t->nrows = (int)nrow - 1;
    return PETAL_OK;
}

void csv_free(csv_table *t) {
    free(t->fields);
    free(t->lines);
    free(t->text);
    t->fields = NULL;
    t->lines = NULL;
    t->text = NULL;
    t->nrows = t->ncols = 0;
}

int csv_col(const csv_table *t, const char *name) {
    size_t len = strlen(name);
    for (int c = 0; c < t->ncols; c++) {
        const char *h = t->fields[c];
        while (isspace((unsigned char)*h)) h++;
        size_t hl = strlen(h);
        while (hl && isspace((unsigned char)h[hl - 1])) hl--;
        if (hl == len && !memcmp(h, name, len)) return c;
    }
    return -1;
}

int csv_require(int *col, const csv_table *t, const char *name, petal_err *err) {
    *col = csv_col(t, name);
    if (*col < 0) return petal_fail(err, PETAL_EINPUT, "%s: missing column '%s'", t->path, name);
    return PETAL_OK;
}
