// A small CSV reader for dataset metadata (RFC 4180 style): comma separated,
// fields optionally quoted with '"' (a doubled "" inside quotes is one quote,
// quoted fields may hold commas and newlines), LF or CRLF line ends, an
// optional UTF-8 byte-order mark. The first row is the header; columns are
// looked up by name so files with reordered or extra columns still load.
#ifndef PETAL_CSV_H
#define PETAL_CSV_H
#include "core/common.h"

typedef struct {
    char path[1024];  // the file read, for error messages
    int ncols;        // fields per row, from the header
    int nrows;        // data rows (header excluded)
    char **fields;    // (nrows + 1, ncols) row-major; row 0 is the header
    int *lines;       // (nrows + 1) 1-based line where each row starts
    char *text;       // the file's bytes, unquoted in place; fields point here
} csv_table;

// Reads and parses path. A missing file, an unterminated quote or a row whose
// field count differs from the header's -> PETAL_EINPUT naming file and line.
int csv_read(csv_table *t, const char *path, petal_err *err);
void csv_free(csv_table *t);

// Column index of the header field equal to name (surrounding blanks ignored),
// or -1 if there is none.
int csv_col(const csv_table *t, const char *name);

// Like csv_col but a missing column is an error naming the file and column.
int csv_require(int *col, const csv_table *t, const char *name, petal_err *err);

// Field of data row r (0-based, header excluded) in column c.
static inline const char *csv_field(const csv_table *t, int r, int c) {
    return t->fields[(size_t)(r + 1) * t->ncols + c];
}

// Line number of data row r, for error messages.
static inline int csv_line(const csv_table *t, int r) { return t->lines[r + 1]; }
#endif
