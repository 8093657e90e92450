// Dataset loaders, evaluation protocols and few-shot subsets (see dataset.h
// for the layouts and protocols themselves).
#include "core/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "core/csv.h"

// ---- building a dataset -----------------------------------------------------
// While loading, strings live in one growing buffer and items refer to them by
// offset (the buffer moves as it grows); dataset_finish turns offsets into
// pointers once the buffer is final.

typedef struct {
    char *buf;
    size_t len, cap;
    dataset_item *items;  // (n) with path/rel unset until finish
    size_t *poff;         // (n) offset of each item's full path in buf
    size_t n, icap;
    size_t *coff;         // (K) offset of each class name in buf
    int K, kcap;
    size_t baselen;       // strlen(base): rel = path + baselen + 1
} builder;


// Appends the concatenation of parts (NULL-terminated) as one string.
static size_t bstr(builder *b, const char *a, const char *s1, const char *s2, const char *s3) {
    const char *parts[4] = {a, s1, s2, s3};
    size_t total = 1;
    for (int i = 0; i < 4; i++)
        if (parts[i]) total += strlen(parts[i]);
    b->buf = petal_grow(b->buf, &b->cap, b->len + total, 1);
    size_t off = b->len;
    for (int i = 0; i < 4; i++) {
        if (!parts[i]) continue;
        size_t l = strlen(parts[i]);
        memcpy(b->buf + b->len, parts[i], l);
        b->len += l;
    }
    b->buf[b->len++] = '\0';
    return off;
}

static void badd_item(builder *b, size_t poff, int label, int fold, int split) {
    size_t pcap = b->icap;  // poff grows in step with items
    b->items = petal_grow(b->items, &b->icap, b->n + 1, sizeof *b->items);
    b->poff = petal_grow(b->poff, &pcap, b->icap, sizeof *b->poff);
    b->items[b->n] = (dataset_item){.label = label, .fold = fold, .split = split};
    b->poff[b->n] = poff;
    b->n++;
}

static void badd_class(builder *b, const char *name) {
    size_t cap = (size_t)b->kcap;
    b->coff = petal_grow(b->coff, &cap, (size_t)b->K + 1, sizeof *b->coff);
    b->kcap = (int)cap;
    b->coff[b->K++] = bstr(b, name, NULL, NULL, NULL);
}

static void builder_free(builder *b) {
    free(b->buf);
    free(b->items);
    free(b->poff);
    free(b->coff);
    memset(b, 0, sizeof *b);
}

static void dataset_finish(dataset *ds, builder *b) {
    ds->N = (int)b->n;
    ds->K = b->K;
    ds->strings = b->buf;
    ds->items = b->items ? b->items : petal_calloc(1, sizeof *ds->items);
    ds->classes = petal_calloc((size_t)b->K + 1, sizeof *ds->classes);
    for (int c = 0; c < b->K; c++) ds->classes[c] = b->buf + b->coff[c];
    for (size_t i = 0; i < b->n; i++) {
        ds->items[i].path = b->buf + b->poff[i];
        ds->items[i].rel = ds->items[i].path + b->baselen + 1;
    }
    free(b->poff);
    free(b->coff);
    memset(b, 0, sizeof *b);
}

// ---- small helpers ------------------------------------------------------------

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// Strict decimal integer (surrounding blanks allowed).
static int parse_int(const char *s, long *v) {
    while (isspace((unsigned char)*s)) s++;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (end == s || errno) return 0;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return 0;
    *v = x;
    return 1;
}

// The corpus folder: root/sub if that is a directory, else root itself.
static void find_base(char *base, size_t cap, const char *root, const char *sub) {
    char cand[4096];
    snprintf(cand, sizeof cand, "%s/%s", root, sub ? sub : "");
    snprintf(base, cap, "%s", sub && is_dir(cand) ? cand : root);
    size_t l = strlen(base);
    while (l > 1 && base[l - 1] == '/') base[--l] = '\0';
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// A table entry's audio path must stay inside the corpus: no absolute path,
// no ".." component (it would let a CSV make petal read any file).
static int path_escapes(const char *rel) {
    if (rel[0] == '/') return 1;
    for (const char *p = rel; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

// Why an audio path named by a table cannot be used ("not found", "a symlink
// loop", ...), or NULL when it is a regular file.
static const char *unusable(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) return S_ISREG(st.st_mode) ? NULL : "not a regular file";
    return errno == ELOOP ? "a symlink loop" : "not found";
}

// Where each item came from, for messages: table file and 1-based line.
typedef struct {
    const char **table;  // (n)
    int *line;           // (n)
    size_t n, cap, lcap;
} item_origin;

static void origin_add(item_origin *o, const char *table, int line) {
    size_t c1 = o->cap, c2 = o->lcap;
    o->table = petal_grow(o->table, &c1, o->n + 1, sizeof *o->table);
    o->line = petal_grow(o->line, &c2, o->n + 1, sizeof *o->line);
    o->cap = c1, o->lcap = c2;
    o->table[o->n] = table;
    o->line[o->n++] = line;
}

static void origin_free(item_origin *o) {
    free(o->table);
    free(o->line);
    memset(o, 0, sizeof *o);
}

static int cmp_poff(const void *a, const void *b, void *ctx) {
    const builder *bd = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    int r = strcmp(bd->buf + bd->poff[x], bd->buf + bd->poff[y]);
    return r ? r : (x > y) - (x < y);
}

// Every audio file at most once: the same clip in two rows (two folds or
// splits) would leak test data into training.
static int check_unique(const builder *b, const item_origin *o, petal_err *err) {
    if (b->n < 2) return PETAL_OK;
    int *ix = petal_malloc(b->n * sizeof *ix);
    for (size_t i = 0; i < b->n; i++) ix[i] = (int)i;
    qsort_r(ix, b->n, sizeof *ix, cmp_poff, (void *)b);
    int st = PETAL_OK;
    for (size_t k = 1; k < b->n && !st; k++) {
        int a = ix[k - 1], c = ix[k];
        if (strcmp(b->buf + b->poff[a], b->buf + b->poff[c])) continue;
        const dataset_item *x = &b->items[a], *y = &b->items[c];
        char where[64];
        if (x->fold > 0) snprintf(where, sizeof where, "folds %d and %d", x->fold, y->fold);
        else snprintf(where, sizeof where, "splits %s and %s", dataset_split_name(x->split),
                      dataset_split_name(y->split));
        st = petal_fail(err, PETAL_EINPUT,
                        "%s:%d: audio file %s is listed again (first at %s:%d; %s): a clip in "
                        "two rows leaks between splits",
                        o->table[c], o->line[c], b->buf + b->poff[c], o->table[a], o->line[a],
                        where);
    }
    free(ix);
    return st;
}

// ---- esc50 and us8k: one CSV with fold, numeric label and label name -----------

typedef struct {
    const char *csv_rel;     // CSV path under the corpus folder
    const char *file_col, *label_col, *name_col;
    int n_folds;
    int fold_subdir;         // audio/fold<k>/<file> (us8k) vs audio/<file> (esc50)
} fold_csv_spec;

static int load_fold_csv(dataset *ds, builder *b, const fold_csv_spec *sp, petal_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", ds->base, sp->csv_rel);
    csv_table t;
    int st = csv_read(&t, path, err);
    if (st) return st;
    int cf, cfold, cl, cn;
    if ((st = csv_require(&cf, &t, sp->file_col, err)) ||
        (st = csv_require(&cfold, &t, "fold", err)) ||
        (st = csv_require(&cl, &t, sp->label_col, err)) ||
        (st = csv_require(&cn, &t, sp->name_col, err))) {
        csv_free(&t);
        return st;
    }
    // Class names by label, as row indices (first row naming each label).
    int kcap = 0, K = 0;
    int *first = NULL;
    item_origin orig = {0};
    st = PETAL_OK;
    for (int r = 0; r < t.nrows && !st; r++) {
        const char *file = csv_field(&t, r, cf), *name = csv_field(&t, r, cn);
        long fold, label;
        int line = csv_line(&t, r);
        if (!parse_int(csv_field(&t, r, cfold), &fold) || fold < 1 || fold > sp->n_folds) {
            st = petal_fail(err, PETAL_EINPUT, "%s:%d: fold '%s' is not in 1..%d", path, line,
                            csv_field(&t, r, cfold), sp->n_folds);
            break;
        }
        if (!parse_int(csv_field(&t, r, cl), &label) || label < 0 || label >= 100000 || !*name) {
            st = petal_fail(err, PETAL_EINPUT, "%s:%d: unknown label %s='%s' %s='%s'", path, line,
                            sp->label_col, csv_field(&t, r, cl), sp->name_col, name);
            break;
        }
        if (label >= K) {
            if (label >= kcap) {
                int nc = kcap ? kcap : 64;
                while (nc <= label) nc *= 2;
                first = realloc(first, (size_t)nc * sizeof *first);
                if (!first) {
                    fprintf(stderr, "petal: out of memory\n");
                    abort();
                }
                kcap = nc;
            }
            for (int c = K; c <= label; c++) first[c] = -1;
            K = (int)label + 1;
        }
        if (first[label] < 0) {
            first[label] = r;
        } else if (strcmp(csv_field(&t, first[label], cn), name)) {
            st = petal_fail(err, PETAL_EINPUT, "%s:%d: unknown label: %s %ld is '%s' here but '%s' on line %d",
                            path, line, sp->label_col, label, name,
                            csv_field(&t, first[label], cn), csv_line(&t, first[label]));
            break;
        }
        char sub[32] = "";
        if (sp->fold_subdir) snprintf(sub, sizeof sub, "fold%ld/", fold);
        if (!*file) {
            st = petal_fail(err, PETAL_EINPUT, "%s:%d: empty %s", path, line, sp->file_col);
            break;
        }
        if (path_escapes(file)) {
            st = petal_fail(err, PETAL_EINPUT,
                            "%s:%d: %s '%s' leaves the corpus folder (absolute or '..')", path,
                            line, sp->file_col, file);
            break;
        }
        size_t off = bstr(b, ds->base, "/audio/", sub, file);
        const char *why = unusable(b->buf + off);
        if (why) {
            st = petal_fail(err, PETAL_EINPUT, "%s:%d: audio file %s %s", path, line,
                            b->buf + off, why);
            break;
        }
        badd_item(b, off, (int)label, (int)fold, -1);
        origin_add(&orig, path, line);
    }
    if (!st) st = check_unique(b, &orig, err);
    origin_free(&orig);
    for (int c = 0; c < K && !st; c++) {
        if (first[c] < 0)
            st = petal_fail(err, PETAL_EINPUT, "%s: empty class: no row has %s %d (labels must run 0..%d)",
                            path, sp->label_col, c, K - 1);
        else
            badd_class(b, csv_field(&t, first[c], cn));
    }
    if (!st && K == 0) st = petal_fail(err, PETAL_EINPUT, "%s: no rows", path);
    free(first);
    csv_free(&t);
    return st;
}

// ---- gsc and folder: one folder per class ----------------------------------------

static int has_audio_ext(const char *name, int allow_flac) {
    size_t l = strlen(name);
    if (l > 4 && !strcasecmp(name + l - 4, ".wav")) return 1;
    if (allow_flac && l > 5 && !strcasecmp(name + l - 5, ".flac")) return 1;
    return 0;
}

// Names in dir (sorted) that are directories (want_dirs) or audio files.
// *names is malloc'ed, each name too.
static int list_dir(char ***names, int *n, const char *dir, int want_dirs, int allow_flac,
                    petal_err *err) {
    DIR *d = opendir(dir);
    if (!d) return petal_fail(err, PETAL_EINPUT, "%s: cannot open directory (%s)", dir, strerror(errno));
    size_t cap = 0, cnt = 0;
    char **v = NULL;
    struct dirent *e;
    char full[8192];
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (nm[0] == '.') continue;
        int isd;
        if (e->d_type == DT_DIR) {
            isd = 1;
        } else if (e->d_type == DT_REG) {
            isd = 0;
        } else {  // symlink or a filesystem without d_type: ask stat
            snprintf(full, sizeof full, "%s/%s", dir, nm);
            struct stat st;
            if (stat(full, &st)) {
                if (errno != ELOOP) continue;  // a dangling link is no file
                closedir(d);
                for (size_t k = 0; k < cnt; k++) free(v[k]);
                free(v);
                return petal_fail(err, PETAL_EINPUT, "%s: symlink loop", full);
            }
            if (S_ISDIR(st.st_mode)) isd = 1;
            else if (S_ISREG(st.st_mode)) isd = 0;
            else continue;
        }
        if (want_dirs ? (!isd || nm[0] == '_') : (isd || !has_audio_ext(nm, allow_flac))) continue;
        v = petal_grow(v, &cap, cnt + 1, sizeof *v);
        size_t l = strlen(nm) + 1;
        v[cnt] = petal_malloc(l);
        memcpy(v[cnt++], nm, l);
    }
    closedir(d);
    if (cnt) qsort(v, cnt, sizeof *v, cmp_str);
    *names = v;
    *n = (int)cnt;
    return PETAL_OK;
}

static void free_names(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

// Scans base/<class>/ folders into items (split = train); cstart[c]..cstart[c+1]
// is class c's item range, files sorted by name.
static int scan_classes(dataset *ds, builder *b, int **cstart, int allow_flac, petal_err *err) {
    char **cls;
    int K;
    int st = list_dir(&cls, &K, ds->base, 1, allow_flac, err);
    if (st) return st;
    if (K == 0) {
        free_names(cls, K);
        return petal_fail(err, PETAL_EINPUT, "%s: no class folders", ds->base);
    }
    int *start = petal_malloc(((size_t)K + 1) * sizeof *start);
    for (int c = 0; c < K && !st; c++) {
        char dir[8192];
        snprintf(dir, sizeof dir, "%s/%s", ds->base, cls[c]);
        char **files;
        int nf;
        if ((st = list_dir(&files, &nf, dir, 0, allow_flac, err))) break;
        if (nf == 0)
            st = petal_fail(err, PETAL_EINPUT, "%s: empty class (no %s files)", dir,
                            allow_flac ? ".wav or .flac" : ".wav");
        badd_class(b, cls[c]);
        start[c] = (int)b->n;
        for (int i = 0; i < nf && !st; i++)
            badd_item(b, bstr(b, dir, "/", files[i], NULL), c, 0, DATASET_TRAIN);
        free_names(files, nf);
    }
    start[K] = (int)b->n;
    free_names(cls, K);
    if (st) {
        free(start);
        return st;
    }
    *cstart = start;
    return PETAL_OK;
}

// Item of relative path rel ("<class>/<file>"), or -1 (class unknown: -2).
static int find_rel(const builder *b, const int *cstart, const char *rel) {
    const char *slash = strchr(rel, '/');
    if (!slash) return -2;
    size_t cl = (size_t)(slash - rel);
    int lo = 0, hi = b->K - 1, c = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *name = b->buf + b->coff[mid];
        int r = strncmp(name, rel, cl);
        if (r == 0 && name[cl]) r = 1;
        if (r == 0) {
            c = mid;
            break;
        }
        if (r < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    if (c < 0) return -2;
    // Items of class c are sorted by file name; their rel is "<class>/<file>".
    lo = cstart[c];
    hi = cstart[c + 1] - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int r = strcmp(b->buf + b->poff[mid] + b->baselen + 1, rel);
        if (r == 0) return mid;
        if (r < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

// Applies a list file: every line "<class>/<file>" moves that item to split.
// mark[i] records which list named item i, to catch double listings.
static int apply_list(builder *b, const int *cstart, char *mark, const char *base,
                      const char *path, int split, petal_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return petal_fail(err, PETAL_EINPUT, "%s: cannot open (%s)", path, strerror(errno));
    char line[8192];
    int ln = 0, st = PETAL_OK;
    while (!st && fgets(line, sizeof line, f)) {
        ln++;
        size_t l = strlen(line);
        while (l && isspace((unsigned char)line[l - 1])) line[--l] = '\0';
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (!*s) continue;
        if (s[0] == '.' && s[1] == '/') s += 2;
        int i = find_rel(b, cstart, s);
        if (i == -2) {
            char cls[256];
            const char *slash = strchr(s, '/');
            snprintf(cls, sizeof cls, "%.*s", slash ? (int)(slash - s) : (int)strlen(s), s);
            st = petal_fail(err, PETAL_EINPUT, "%s:%d: unknown label '%s' in '%s'", path, ln, cls, s);
        } else if (i < 0) {
            st = petal_fail(err, PETAL_EINPUT, "%s:%d: audio file %s/%s not found", path, ln, base, s);
        } else if (mark[i]) {
            st = petal_fail(err, PETAL_EINPUT, "%s:%d: '%s' is already in the %s list", path, ln, s,
                            dataset_split_name(mark[i] - 1));
        } else {
            mark[i] = (char)(split + 1);
            b->items[i].split = split;
        }
    }
    if (!st && ferror(f)) st = petal_fail(err, PETAL_EINPUT, "%s: read error", path);
    fclose(f);
    return st;
}

static int load_gsc(dataset *ds, builder *b, petal_err *err) {
    int *cstart;
    int st = scan_classes(ds, b, &cstart, 0, err);
    if (st) return st;
    char *mark = petal_calloc(b->n ? b->n : 1, 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/validation_list.txt", ds->base);
    st = apply_list(b, cstart, mark, ds->base, path, DATASET_VALID, err);
    if (!st) {
        snprintf(path, sizeof path, "%s/testing_list.txt", ds->base);
        st = apply_list(b, cstart, mark, ds->base, path, DATASET_TEST, err);
    }
    free(mark);
    free(cstart);
    return st;
}

static int load_folder(dataset *ds, builder *b, uint64_t split_seed, petal_err *err) {
    int *cstart;
    int st = scan_classes(ds, b, &cstart, 1, err);
    if (st) return st;
    static const char *lists[DATASET_NSPLITS] = {"train.txt", "valid.txt", "test.txt"};
    char path[4200];
    int have[DATASET_NSPLITS], any = 0;
    for (int s = 0; s < DATASET_NSPLITS; s++) {
        snprintf(path, sizeof path, "%s/%s", ds->base, lists[s]);
        have[s] = is_file(path);
        any |= have[s];
    }
    if (any) {
        char *mark = petal_calloc(b->n ? b->n : 1, 1);
        // With a train list, items named by no list are left out (split -1,
        // dropped below); without one they stay train.
        if (have[DATASET_TRAIN])
            for (size_t i = 0; i < b->n; i++) b->items[i].split = -1;
        for (int s = 0; s < DATASET_NSPLITS && !st; s++) {
            if (!have[s]) continue;
            snprintf(path, sizeof path, "%s/%s", ds->base, lists[s]);
            st = apply_list(b, cstart, mark, ds->base, path, s, err);
        }
        free(mark);
        if (!st && have[DATASET_TRAIN]) {
            size_t w = 0;
            for (size_t i = 0; i < b->n; i++) {
                if (b->items[i].split < 0) continue;
                b->items[w] = b->items[i];
                b->poff[w++] = b->poff[i];
            }
            b->n = w;
        }
    } else {
        // Seeded stratified split: per class, shuffle, then valid, test, train.
        for (int c = 0; c < b->K; c++) {
            int m = cstart[c + 1] - cstart[c];
            if (m < 3) continue;
            int *perm = petal_malloc((size_t)m * sizeof *perm);
            for (int j = 0; j < m; j++) perm[j] = cstart[c] + j;
            petal_rng r;
            petal_rng_seed(&r, split_seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(c + 1)));
            petal_rng_shuffle(&r, perm, m);
            int nv = (int)(m * 0.1 + 0.5), nt = nv;
            if (nv < 1) nv = nt = 1;
            for (int j = 0; j < nv; j++) b->items[perm[j]].split = DATASET_VALID;
            for (int j = nv; j < nv + nt; j++) b->items[perm[j]].split = DATASET_TEST;
            free(perm);
        }
    }
    free(cstart);
    return st;
}

// ---- fsc: three CSVs, intent = action/object/location ---------------------------

static int load_fsc(dataset *ds, builder *b, petal_err *err) {
    static const char *files[DATASET_NSPLITS] = {"train_data.csv", "valid_data.csv", "test_data.csv"};
    size_t *ioff = NULL, icap = 0;  // (n) intent string offset per item
    int st = PETAL_OK;
    char tables[DATASET_NSPLITS][4200];
    item_origin orig = {0};
    for (int s = 0; s < DATASET_NSPLITS && !st; s++) {
        char *path = tables[s];
        snprintf(path, sizeof tables[s], "%s/data/%s", ds->base, files[s]);
        csv_table t;
        if ((st = csv_read(&t, path, err))) break;
        int cp, ca, co, cl;
        if ((st = csv_require(&cp, &t, "path", err)) || (st = csv_require(&ca, &t, "action", err)) ||
            (st = csv_require(&co, &t, "object", err)) ||
            (st = csv_require(&cl, &t, "location", err))) {
            csv_free(&t);
            break;
        }
        for (int r = 0; r < t.nrows && !st; r++) {
            const char *a = csv_field(&t, r, ca), *o = csv_field(&t, r, co),
                       *l = csv_field(&t, r, cl), *file = csv_field(&t, r, cp);
            if (!*a || !*o || !*l) {
                st = petal_fail(err, PETAL_EINPUT, "%s:%d: unknown label: empty action/object/location",
                                path, csv_line(&t, r));
                break;
            }
            if (!*file || path_escapes(file)) {
                st = petal_fail(err, PETAL_EINPUT,
                                "%s:%d: path '%s' is empty or leaves the corpus folder "
                                "(absolute or '..')", path, csv_line(&t, r), file);
                break;
            }
            size_t off = bstr(b, ds->base, "/", file, NULL);
            const char *why = unusable(b->buf + off);
            if (why) {
                st = petal_fail(err, PETAL_EINPUT, "%s:%d: audio file %s %s", path,
                                csv_line(&t, r), b->buf + off, why);
                break;
            }
            badd_item(b, off, -1, 0, s);
            // table names outlive t: they point into tables[] below
            origin_add(&orig, tables[s], csv_line(&t, r));
            ioff = petal_grow(ioff, &icap, b->n, sizeof *ioff);
            char intent[1024];
            snprintf(intent, sizeof intent, "%s/%s/%s", a, o, l);
            ioff[b->n - 1] = bstr(b, intent, NULL, NULL, NULL);
        }
        csv_free(&t);
    }
    if (!st && b->n == 0) st = petal_fail(err, PETAL_EINPUT, "%s/data: no rows in the split CSVs", ds->base);
    if (!st) st = check_unique(b, &orig, err);
    origin_free(&orig);
    if (st) {
        free(ioff);
        return st;
    }
    // Sorted unique intents become the classes.
    const char **names = petal_malloc(b->n * sizeof *names);
    for (size_t i = 0; i < b->n; i++) names[i] = b->buf + ioff[i];
    qsort(names, b->n, sizeof *names, cmp_str);
    size_t K = 0;
    for (size_t i = 0; i < b->n; i++)
        if (K == 0 || strcmp(names[K - 1], names[i])) names[K++] = names[i];
    // names point into b->buf, which badd_class may move: copy them out first.
    size_t total = 0;
    for (size_t c = 0; c < K; c++) total += strlen(names[c]) + 1;
    char *tmp = petal_malloc(total), *w = tmp;
    for (size_t c = 0; c < K; c++) {
        size_t l = strlen(names[c]) + 1;
        memcpy(w, names[c], l);
        names[c] = w;
        w += l;
    }
    for (size_t c = 0; c < K; c++) badd_class(b, names[c]);
    for (size_t i = 0; i < b->n; i++) {
        const char *key = b->buf + ioff[i];
        const char **hit = bsearch(&key, names, K, sizeof *names, cmp_str);
        PETAL_ASSERT(hit);
        b->items[i].label = (int)(hit - names);
    }
    free(tmp);
    free(names);
    free(ioff);
    return PETAL_OK;
}

// ---- public API ------------------------------------------------------------------

static const char *layout_names[DATASET_NLAYOUTS] = {"esc50", "us8k", "gsc", "fsc", "folder"};

int dataset_layout_parse(const char *name) {
    for (int i = 0; i < DATASET_NLAYOUTS; i++)
        if (!strcmp(name, layout_names[i])) return i;
    return -1;
}

const char *dataset_layout_name(int layout) {
    return layout >= 0 && layout < DATASET_NLAYOUTS ? layout_names[layout] : "?";
}

const char *dataset_split_name(int split) {
    static const char *names[DATASET_NSPLITS] = {"train", "valid", "test"};
    return split >= 0 && split < DATASET_NSPLITS ? names[split] : "?";
}

int dataset_load(dataset *ds, int layout, const char *root, uint64_t split_seed, petal_err *err) {
    memset(ds, 0, sizeof *ds);
    PETAL_ASSERT(layout >= 0 && layout < DATASET_NLAYOUTS);
    ds->layout = layout;
    if (!is_dir(root)) return petal_fail(err, PETAL_EINPUT, "%s: no such directory", root);
    builder b = {0};
    int st;
    switch (layout) {
    case DATASET_ESC50: {
        find_base(ds->base, sizeof ds->base, root, "ESC-50");
        b.baselen = strlen(ds->base);
        fold_csv_spec sp = {"meta/esc50.csv", "filename", "target", "category", 5, 0};
        ds->n_folds = 5;
        st = load_fold_csv(ds, &b, &sp, err);
        break;
    }
    case DATASET_US8K: {
        find_base(ds->base, sizeof ds->base, root, "UrbanSound8K");
        b.baselen = strlen(ds->base);
        fold_csv_spec sp = {"metadata/UrbanSound8K.csv", "slice_file_name", "classID", "class", 10, 1};
        ds->n_folds = 10;
        st = load_fold_csv(ds, &b, &sp, err);
        break;
    }
    case DATASET_GSC:
        find_base(ds->base, sizeof ds->base, root, "speech_commands_v0.02");
        b.baselen = strlen(ds->base);
        ds->n_folds = 1;
        st = load_gsc(ds, &b, err);
        break;
    case DATASET_FSC:
        find_base(ds->base, sizeof ds->base, root, "fluent_speech_commands_dataset");
        b.baselen = strlen(ds->base);
        ds->n_folds = 1;
        st = load_fsc(ds, &b, err);
        break;
    default:
        find_base(ds->base, sizeof ds->base, root, NULL);
        b.baselen = strlen(ds->base);
        ds->n_folds = 1;
        st = load_folder(ds, &b, split_seed, err);
        break;
    }
    if (st) {
        builder_free(&b);
        memset(ds, 0, sizeof *ds);
        return st;
    }
    dataset_finish(ds, &b);
    return PETAL_OK;
}

void dataset_free(dataset *ds) {
    free(ds->items);
    free(ds->classes);
    free(ds->strings);
    memset(ds, 0, sizeof *ds);
}

int dataset_split(int *idx, int *n, const dataset *ds, int split, int fold, petal_err *err) {
    *n = 0;
    if (split < 0 || split >= DATASET_NSPLITS)
        return petal_fail(err, PETAL_EINPUT, "%s: bad split %d", ds->base, split);
    if (fold < 1 || fold > ds->n_folds)
        return petal_fail(err, PETAL_EINPUT, "%s: fold %d is not in 1..%d (%s)", ds->base, fold,
                          ds->n_folds, dataset_layout_name(ds->layout));
    int cnt = 0;
    for (int i = 0; i < ds->N; i++) {
        const dataset_item *it = &ds->items[i];
        int s;
        if (ds->layout == DATASET_ESC50) {
            int valid = fold % ds->n_folds + 1;  // the fold after the test fold, wrapping
            s = it->fold == fold ? DATASET_TEST : it->fold == valid ? DATASET_VALID : DATASET_TRAIN;
        } else if (ds->layout == DATASET_US8K) {
            s = it->fold == fold ? DATASET_TEST : DATASET_TRAIN;
        } else {
            s = it->split;
        }
        if (s == split) idx[cnt++] = i;
    }
    *n = cnt;
    return PETAL_OK;
}

static int cmp_item_path(const void *a, const void *b, void *ctx) {
    const dataset *ds = ctx;
    return strcmp(ds->items[*(const int *)a].path, ds->items[*(const int *)b].path);
}
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int dataset_fewshot(int *out, int *counts, const dataset *ds, const int *idx, int n, int k,
                    uint64_t seed, int mode) {
    PETAL_ASSERT(k >= 1);
    PETAL_ASSERT(mode == FEWSHOT_UNIFORM || mode == FEWSHOT_FIRST);
    // Bucket the split's items by class, keeping idx order within a class.
    int *cnt = petal_calloc((size_t)ds->K + 1, sizeof *cnt);
    for (int j = 0; j < n; j++) {
        PETAL_ASSERT(idx[j] >= 0 && idx[j] < ds->N);
        cnt[ds->items[idx[j]].label + 1]++;
    }
    for (int c = 0; c < ds->K; c++) cnt[c + 1] += cnt[c];  // cnt[c] = start of class c
    int *byclass = petal_malloc((size_t)(n ? n : 1) * sizeof *byclass);
    int *fill = petal_malloc((size_t)ds->K * sizeof *fill);
    for (int c = 0; c < ds->K; c++) fill[c] = cnt[c];
    for (int j = 0; j < n; j++) byclass[fill[ds->items[idx[j]].label]++] = idx[j];
    free(fill);

    int m_out = 0;
    for (int c = 0; c < ds->K; c++) {
        int *members = byclass + cnt[c], m = cnt[c + 1] - cnt[c];
        if (mode == FEWSHOT_UNIFORM && m > 1) {
            // Sorting first makes the draw independent of the order items came in.
            qsort_r(members, (size_t)m, sizeof *members, cmp_item_path, (void *)ds);
            petal_rng r;
            petal_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(c + 1)));
            petal_rng_shuffle(&r, members, m);
        }
        int take = m < k ? m : k;
        if (counts) counts[c] = take;
        for (int j = 0; j < take; j++) out[m_out++] = members[j];
    }
    qsort(out, (size_t)m_out, sizeof *out, cmp_int);
    free(byclass);
    free(cnt);
    return m_out;
}

int dataset_fewshot_short(char *msg, size_t cap, const dataset *ds, const int *counts, int k) {
    int nshort = 0;
    size_t len = 0;
    if (cap) msg[0] = '\0';
    for (int c = 0; c < ds->K; c++) {
        if (counts[c] >= k) continue;
        if (len < cap)
            len += (size_t)snprintf(msg + len, cap - len, "%s%s (%d)", nshort ? ", " : "",
                                    ds->classes[c], counts[c]);
        nshort++;
    }
    return nshort;
}
