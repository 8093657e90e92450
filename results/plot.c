// ==== Report figures: a table's numbers plotted by gnuplot (a child process) =======
// gnuplot reads a data file (one block per series: x, y, error) and a script
// from a private temporary folder and writes the figure to a temporary name
// that is renamed into place. Black-and-white readable: every series has its
// own point type and dash pattern as well as its colour.
#include "results/report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char name[600];
    double *x, *y, *e;
    int n;
} series;

static void series_add(series *s, double x, double y, double e) {
    s->x = realloc(s->x, (size_t)(s->n + 1) * sizeof *s->x);
    s->y = realloc(s->y, (size_t)(s->n + 1) * sizeof *s->y);
    s->e = realloc(s->e, (size_t)(s->n + 1) * sizeof *s->e);
    if (!s->x || !s->y || !s->e) petal_oom((size_t)(s->n + 1) * sizeof *s->x);
    s->x[s->n] = x, s->y[s->n] = y, s->e[s->n] = isnan(e) ? 0.0 : e;
    s->n++;
}

// gnuplot single-quoted string: a quote is written twice.
static void gp_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static const char *const y_axis[] = {"test accuracy (%)", "best validation accuracy (%)", "time per trial (s)",
                                     "peak resident memory (MiB)"};
// Point types that stay apart in black and white: open, then filled shapes, then strokes.
static const int point_types[] = {4, 6, 8, 12, 5, 7, 9, 13, 1, 2, 3, 10, 11};

// Dark, colour-blind-safe colours (Okabe-Ito, yellow left out: too faint on white).
static const char *const colours[] = {"#000000", "#d55e00", "#0072b2", "#009e73",
                                      "#cc79a7", "#e69f00", "#56b4e9", "#7f7f7f"};

// The series of a table and how its x axis reads.
typedef enum { X_CATEGORY, X_COLUMNS, X_PARAMS } x_kind;

static int make_series(series **out, int *ns, x_kind *xk, const report_table *t) {
    *xk = t->kind == REPORT_SCALING                                         ? X_PARAMS
          : (t->kind == REPORT_FEWSHOT || t->cols_numeric) && t->nc >= 2 ? X_COLUMNS
                                                                          : X_CATEGORY;
    series *s = petal_calloc((size_t)(t->nr * t->nc + 1), sizeof *s);
    int n = 0;
    if (*xk == X_COLUMNS) {
        for (int r = 0; r < t->nr; r++, n++) {
            snprintf(s[n].name, sizeof s[n].name, "%s", t->rows[r].text);
            for (int c = 0; c < t->nc; c++) {
                const report_cell *cell = &t->cells[r * t->nc + c];
                if (cell->n) series_add(&s[n], t->cols[c].sort_num, cell->mean, cell->std);
            }
        }
    } else if (*xk == X_PARAMS) {
        // one series per method family (and column, when there are several); rows come
        // sorted by family and trainable count
        for (int c = 0; c < t->nc; c++)
            for (int r = 0; r < t->nr; r++) {
                const report_cell *cell = &t->cells[r * t->nc + c];
                const report_line *l = &t->rows[r];
                if (!cell->n || !l->tmin) continue;
                char name[600];
                const char *fam = l->family[0] ? l->family : "mixed";
                if (t->nc > 1) snprintf(name, sizeof name, "%s · %s", fam, t->cols[c].text);
                else snprintf(name, sizeof name, "%s", fam);
                int k = 0;
                while (k < n && strcmp(s[k].name, name)) k++;
                if (k == n) snprintf(s[n++].name, sizeof s[0].name, "%s", name);
                series_add(&s[k], 0.5 * ((double)l->tmin + (double)l->tmax), cell->mean, cell->std);
            }
    } else {
        for (int c = 0; c < t->nc; c++, n++) {
            snprintf(s[n].name, sizeof s[n].name, "%s", t->cols[c].text);
            double off = t->nc > 1 ? 0.25 * (2.0 * c / (t->nc - 1) - 1.0) : 0.0;
            for (int r = 0; r < t->nr; r++) {
                const report_cell *cell = &t->cells[r * t->nc + c];
                if (cell->n) series_add(&s[n], r + off, cell->mean, cell->std);
            }
        }
    }
    *out = s, *ns = n;
    int points = 0;
    for (int i = 0; i < n; i++) points += s[i].n;
    return points;
}

static void series_free(series *s, int n) {
    for (int i = 0; i < n; i++) free(s[i].x), free(s[i].y), free(s[i].e);
    free(s);
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

// Runs gnuplot on script; its messages go to log.
static int run_gnuplot(const char *script, const char *log, petal_err *err) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return petal_fail(err, PETAL_EFAIL, "gnuplot: cannot fork (%s)", strerror(errno));
    if (pid == 0) {
        FILE *l = freopen(log, "w", stderr);
        if (l) dup2(fileno(l), 1);
        if (!freopen("/dev/null", "r", stdin)) _exit(126);
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return petal_fail(err, PETAL_EFAIL, "gnuplot: wait failed (%s)", strerror(errno));
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return PETAL_OK;
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127)
        return petal_fail(err, PETAL_EFAIL, "gnuplot not found (tools/deps.sh installs gnuplot-nox)");
    char first[512] = "";
    FILE *l = fopen(log, "r");
    if (l) {
        while (fgets(first, sizeof first, l) && strspn(first, " \t\n^") == strlen(first)) {
        }
        first[strcspn(first, "\n")] = 0;
        fclose(l);
    }
    return petal_fail(err, PETAL_EFAIL, "gnuplot failed (%s%d): %s", WIFEXITED(ws) ? "exit " : "signal ",
                      WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), first);
}

// Writes the figure to out (not renamed: the caller does), svg or png.
static int plot_to(const report_table *t, const char *out, int svg, petal_err *err) {
    series *s;
    int ns;
    x_kind xk;
    if (!make_series(&s, &ns, &xk, t)) {
        series_free(s, ns);
        return petal_fail(err, PETAL_EINPUT, "%s: nothing to plot (no finished trial in the table)", t->title);
    }
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096], data[4200], script[4200], log[4200];
    snprintf(dir, sizeof dir, "%s/petal-plot-XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        series_free(s, ns);
        return petal_fail(err, PETAL_EFAIL, "%s: cannot create a temporary folder (%s)", dir, strerror(errno));
    }
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    FILE *d = fopen(data, "w"), *g = fopen(script, "w");
    int st = PETAL_OK;
    if (!d || !g) {
        st = petal_fail(err, PETAL_EFAIL, "%s: cannot write (%s)", d ? script : data, strerror(errno));
        goto out;
    }
    for (int i = 0; i < ns; i++) {
        fprintf(d, "# %s\n", s[i].name);
        for (int k = 0; k < s[i].n; k++) fprintf(d, "%.10g %.10g %.10g\n", s[i].x[k], s[i].y[k], s[i].e[k]);
        if (!s[i].n) fprintf(d, "nan nan nan\n");  // keeps the block (and its index)
        fprintf(d, "\n\n");
    }
    int w = 1000, h = 600;
    if (svg) fprintf(g, "set terminal svg size %d,%d noenhanced font 'sans,13' background '#ffffff'\n", w, h);
    else fprintf(g, "set terminal pngcairo size %d,%d noenhanced font 'sans,11' background '#ffffff'\n", w, h);
    fprintf(g, "set output "), gp_quote(g, out), fprintf(g, "\n");
    fprintf(g, "set title "), gp_quote(g, t->title), fprintf(g, "\n");
    fprintf(g, "set ylabel "), gp_quote(g, y_axis[t->metric]), fprintf(g, "\n");
    fprintf(g, "set grid\nset key below spacing 1.2\nset border 3\nset tics nomirror\n");
    fprintf(g, "set offsets graph 0.04, graph 0.04, graph 0.08, graph 0.08\n");
    if (xk == X_PARAMS) {
        fprintf(g, "set logscale x 10\nset format x '%%.0s%%c'\n");
        fprintf(g, "set xlabel 'trainable parameters (count, log scale)'\n");
    } else if (xk == X_COLUMNS) {
        char xl[400];
        if (t->kind == REPORT_FEWSHOT && !strcmp(t->col_head, "dataset.shots"))
            snprintf(xl, sizeof xl, "training examples per class (shots)");
        else snprintf(xl, sizeof xl, "%s", t->col_head);
        fprintf(g, "set xlabel "), gp_quote(g, xl), fprintf(g, "\n");
        // shots and other sizes that grow geometrically read best on a log axis
        double lo = t->cols[0].sort_num, hi = t->cols[t->nc - 1].sort_num;
        if (lo > 0 && hi / lo >= 8) fprintf(g, "set logscale x 2\n");
        fprintf(g, "set xtics (");
        for (int c = 0; c < t->nc; c++) fprintf(g, "%s'%g' %.10g", c ? ", " : "", t->cols[c].sort_num, t->cols[c].sort_num);
        fprintf(g, ")\n");
    } else {
        fprintf(g, "set xlabel "), gp_quote(g, t->row_head), fprintf(g, "\n");
        fprintf(g, "set xrange [-0.6:%g]\nset xtics rotate by -25 (", t->nr - 0.4);
        for (int r = 0; r < t->nr; r++) fprintf(g, "%s", r ? ", " : ""), gp_quote(g, t->rows[r].text),
                                          fprintf(g, " %d", r);
        fprintf(g, ")\nset bmargin 8\n");
    }
    fprintf(g, "plot ");
    for (int i = 0; i < ns; i++) {
        fprintf(g, "%s", i ? ", \\\n     " : "");
        gp_quote(g, data);
        fprintf(g, " index %d using 1:2:3 with %s lw 1.5 lc rgb '%s' pt %d ps 1.4 dt %d title ", i,
                xk == X_CATEGORY ? "yerrorbars" : "yerrorlines", colours[i % 8], point_types[i % 13], xk == X_CATEGORY ? 1 : i % 5 + 1);
        gp_quote(g, s[i].name);
    }
    fprintf(g, "\n");
    int bad = ferror(d) || ferror(g);
    bad |= fclose(d) != 0, d = NULL;
    bad |= fclose(g) != 0, g = NULL;
    if (bad) st = petal_fail(err, PETAL_EFAIL, "%s: cannot write the plot's input", dir);
    else st = run_gnuplot(script, log, err);
out:
    if (d) fclose(d);
    if (g) fclose(g);
    unlink(data), unlink(script), unlink(log), rmdir(dir);
    series_free(s, ns);
    return st;
}

int report_plot(const report_table *t, const char *path, petal_err *err) {
    int svg = has_suffix(path, ".svg");
    if (!svg && !has_suffix(path, ".png"))
        return petal_fail(err, PETAL_EINPUT, "--plot %s: the figure's name must end in .png or .svg", path);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int st = plot_to(t, tmp, svg, err);
    struct stat sb;
    if (!st && (stat(tmp, &sb) || sb.st_size == 0))
        st = petal_fail(err, PETAL_EFAIL, "%s: gnuplot wrote nothing", path);
    if (!st && rename(tmp, path)) st = petal_fail(err, PETAL_EFAIL, "%s: cannot write (%s)", path, strerror(errno));
    if (st) unlink(tmp);
    return st;
}

char *report_plot_svg(const report_table *t, petal_err *err) {
    const char *tmpdir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/petal-fig-%ld-XXXXXX.svg", tmpdir && tmpdir[0] ? tmpdir : "/tmp", (long)getpid());
    int fd = mkstemps(path, 4);
    if (fd < 0) {
        petal_fail(err, PETAL_EFAIL, "%s: cannot create (%s)", path, strerror(errno));
        return NULL;
    }
    close(fd);
    char *text = NULL;
    if (!plot_to(t, path, 1, err)) {
        FILE *f = fopen(path, "r");
        long n = -1;
        if (f && !fseek(f, 0, SEEK_END)) n = ftell(f);
        if (f && n > 0 && !fseek(f, 0, SEEK_SET)) {
            text = petal_malloc((size_t)n + 1);
            if (fread(text, 1, (size_t)n, f) != (size_t)n) free(text), text = NULL;
            else text[n] = 0;
        }
        if (f) fclose(f);
        if (!text) petal_fail(err, PETAL_EFAIL, "%s: gnuplot wrote nothing readable", path);
    }
    unlink(path);
    // inline: from <svg on (no XML prolog or doctype inside HTML)
    char *at = text ? strstr(text, "<svg") : NULL;
    if (text && !at) {
        free(text);
        petal_fail(err, PETAL_EFAIL, "gnuplot's SVG has no <svg> element");
        return NULL;
    }
    if (at && at != text) memmove(text, at, strlen(at) + 1);
    return text;
}
