// One backbone per node (core/backbone_image.c, backbone_load with a share_dir):
//  - a shared load gives every tensor bit-identical to a private load, for a
//    PETL method (adapter), BitFit (trainable biases inside the backbone) and
//    full fine-tuning (nothing to share), with re-gridded position embeddings;
//  - most frozen backbone bytes are mapped, and training steps on a shared
//    model give bit-identical logits and weights while writing none of the
//    mapped pages (Private_Dirty of the image's mappings stays 0);
//  - a second process's mapping shares the same physical pages (Shared_Clean);
//  - a LoRA merge on a shared model changes only that model, not the image;
//  - a changed backbone file rebuilds its image in place (one image per file and
//    layout), a truncated image is rebuilt, images of deleted files are pruned;
//  - processes racing on a fresh folder build one image and agree;
//  - an unusable folder warns and loads privately.
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "core/adamw.h"
#include "core/backbone.h"
#include "core/train.h"
#include "tests/check.h"

static char tmp[] = "/tmp/petal_test_share_XXXXXX";
static char bbfile[600], dir[600];

static ast_config tiny(int frames) {
    ast_config c;
    petal_err err;
    PETAL_ASSERT(ast_config_preset(&c, "tiny", frames, 3, &err) == PETAL_OK);
    return c;
}

// A model of `method` at `frames`, seeded, with the backbone file's rows
// (shared through `share` unless NULL).
static petal_err last_warn;  // the last load's warning (empty when none)
static void load(ast_model *m, const char *method, int frames, const char *share) {
    ast_config c = tiny(frames);
    ast_method meth;
    petal_err err;
    PETAL_ASSERT(ast_method_parse(&meth, method, &err) == PETAL_OK);
    PETAL_ASSERT(ast_model_init(m, &c, &meth, 4, &err) == PETAL_OK);
    ast_init_weights(m, 3, 1);
    int st = backbone_load(m, bbfile, 0, share, &last_warn, &err);
    CHECK(st == PETAL_OK, "load %s: %s", method, err.msg);
}

// Writes a random backbone (seed) to bbfile at 48 frames.
static void write_backbone(uint64_t seed) {
    ast_config c = tiny(48);
    ast_method meth;
    ast_model m;
    petal_err err;
    PETAL_ASSERT(ast_method_parse(&meth, "linear", &err) == PETAL_OK);
    PETAL_ASSERT(ast_model_init(&m, &c, &meth, 1, &err) == PETAL_OK);
    ast_init_weights(&m, seed, 0);
    PETAL_ASSERT(backbone_save(bbfile, &m, 0, NULL, &err) == PETAL_OK);
    ast_model_free(&m);
}

// Name of the first row whose values differ, or NULL.
static const char *first_diff(const ast_model *a, const ast_model *b) {
    for (int i = 0; i < a->params.nrows; i++)
        if (memcmp(param_data(&a->params, i), param_data(&b->params, i),
                   a->params.rows[i].n * sizeof(float)))
            return a->params.rows[i].name;
    return NULL;
}

static size_t frozen_backbone_bytes(const param_table *t) {
    size_t n = 0;
    for (int i = 0; i < t->nrows; i++)
        if (t->rows[i].backbone && !t->rows[i].trainable) n += t->rows[i].n * sizeof(float);
    return n;
}

// Sums a field (kB) over this process's mappings of files in `dir`.
static long smaps_kb(const char *field) {
    FILE *f = fopen("/proc/self/smaps", "r");
    PETAL_ASSERT(f);
    char line[1024];
    int in = 0;
    long sum = 0;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
            in = strstr(line, dir) != NULL;
            continue;
        }
        if (in && !strncmp(line, field, fl) && line[fl] == ':') sum += atol(line + fl + 1);
    }
    fclose(f);
    return sum;
}

static int count_images(void) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        n += l > 4 && !strcmp(e->d_name + l - 4, ".img");
    }
    closedir(d);
    return n;
}

// Three training steps.
static void train(ast_model *m, float *logits_out) {
    ast_config c = m->cfg;
    float *x = petal_falloc((size_t)4 * c.frames * c.F);
    int y[4];
    synthetic_features(x, y, 4, c.frames, c.F, c.K, 9);
    adamw_config oc = adamw_defaults(1e-3f);
    adamw_state opt;
    adamw_init(&opt, &oc, &m->params);
    for (int s = 0; s < 3; s++) {
        ast_forward(m, x, y, 4, NULL);
        ast_backward(m, y, 4);
        adamw_step(&opt, &m->params, oc.lr);
    }
    ast_forward(m, x, y, 4, NULL);
    memcpy(logits_out, m->a.logits, sizeof(float) * 4 * (size_t)c.K);
    adamw_free(&opt);
    free(x);
}

static void test_equal_and_mapped(void) {
    const char *methods[] = {"adapter_pfeiffer", "bitfit", "full", "lora"};
    for (int k = 0; k < 4; k++) {
        ast_model p, s;
        load(&p, methods[k], 40, NULL);  // 48-frame file: position embeddings re-gridded
        load(&s, methods[k], 40, dir);
        const char *bad = first_diff(&p, &s);
        CHECK(!bad, "%s: shared load differs from private at %s", methods[k], bad);
        size_t frozen = frozen_backbone_bytes(&s.params);
        CHECK(s.params.nshared <= frozen && s.params.nshared >= frozen * 8 / 10,
              "%s: %zu of %zu frozen backbone bytes mapped", methods[k], s.params.nshared, frozen);
        float lp[12], ls[12];
        train(&p, lp);
        train(&s, ls);
        bad = first_diff(&p, &s);
        CHECK(!bad && !memcmp(lp, ls, sizeof lp), "%s: training on the shared backbone differs (%s)",
              methods[k], bad ? bad : "logits");
        CHECK(smaps_kb("Private_Dirty") == 0, "%s: training wrote %ld kB of mapped backbone pages",
              methods[k], smaps_kb("Private_Dirty"));
        if (!strcmp(methods[k], "lora")) {
            // Exporting merges LoRA into the projections: the merged model equals the
            // private one, and the image (read by a fresh load) is untouched.
            ast_lora_merge(&p);
            ast_lora_merge(&s);
            CHECK(!first_diff(&p, &s), "merge on the shared model");
            CHECK(smaps_kb("Private_Dirty") > 0, "the merge copied the pages it wrote");
            ast_model q, r;
            load(&q, "linear", 40, dir);
            load(&r, "linear", 40, NULL);
            CHECK(!first_diff(&q, &r), "the image is unchanged by another model's merge");
            ast_model_free(&q);
            ast_model_free(&r);
        }
        ast_model_free(&p);
        ast_model_free(&s);
    }
    CHECK(smaps_kb("Rss") == 0, "freed models leave no mapping behind");
}

// Runs this test binary as a child (exec: OpenMP does not survive a bare
// fork) in `mode`, with the current backbone file and folder; stdin/stdout
// are the given descriptors (-1: inherited).
static pid_t spawn(const char *mode, int in, int out) {
    pid_t pid = fork();
    PETAL_ASSERT(pid >= 0);
    if (pid == 0) {
        if (in >= 0) dup2(in, 0);
        if (out >= 0) dup2(out, 1);
        execl("/proc/self/exe", "test_share", mode, bbfile, dir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_ok(pid_t pid) {
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Child modes: "hold" loads a linear model, trains, writes one byte and waits
// for one; "race" loads an adapter model and compares it with a private load;
// "exit" exits (a pid that is surely gone afterwards).
static int child(const char *mode) {
    ast_model s, p;
    if (!strcmp(mode, "exit")) return 0;
    if (!strcmp(mode, "hold")) {
        load(&s, "linear", 40, dir);
        float l[12];
        train(&s, l);  // reads every mapped page
        char b = 1;
        PETAL_ASSERT(write(1, &b, 1) == 1);
        PETAL_ASSERT(read(0, &b, 1) == 1);
        ast_model_free(&s);
    } else {
        load(&s, "adapter_pfeiffer", 40, dir);
        load(&p, "adapter_pfeiffer", 40, NULL);
        CHECK(!first_diff(&p, &s) && s.params.nshared > 0, "race child");
        ast_model_free(&s);  // (leak checkers run on the children too)
        ast_model_free(&p);
    }
    return check_failed ? 1 : 0;
}

// A second process maps the same image: this one's mapped pages are then shared.
static void test_two_processes(void) {
    ast_model s;
    load(&s, "adapter_pfeiffer", 40, dir);
    float l[12];
    train(&s, l);
    int go[2], ready[2];
    PETAL_ASSERT(pipe(go) == 0 && pipe(ready) == 0);
    pid_t pid = spawn("hold", go[0], ready[1]);
    close(go[0]);
    close(ready[1]);
    char b = 0;
    CHECK(read(ready[0], &b, 1) == 1, "the child loaded");
    long shared = smaps_kb("Shared_Clean"), mapped = (long)(s.params.nshared / 1024);
    CHECK(shared >= mapped * 9 / 10, "with two processes %ld of %ld mapped kB are shared", shared,
          mapped);
    PETAL_ASSERT(write(go[1], &b, 1) == 1);
    CHECK(wait_ok(pid), "child's load");
    close(go[1]);
    close(ready[0]);
    ast_model_free(&s);
}

static void test_rebuilds(void) {
    CHECK(count_images() == 1, "one image for one file and layout (%d)", count_images());
    // The file changes: the image follows it, in place.
    write_backbone(11);
    ast_model p, s;
    load(&p, "adapter_pfeiffer", 40, NULL);
    load(&s, "adapter_pfeiffer", 40, dir);
    CHECK(!first_diff(&p, &s), "a changed backbone file is re-imaged");
    CHECK(count_images() == 1, "the stale image was replaced (%d images)", count_images());
    ast_model_free(&s);
    // Another layout (frames) is another image.
    ast_model f, g;
    load(&f, "linear", 48, dir);
    load(&g, "linear", 48, NULL);
    CHECK(!first_diff(&f, &g), "second layout");
    CHECK(count_images() == 2, "two layouts, two images (%d)", count_images());
    ast_model_free(&f);
    ast_model_free(&g);
    // A truncated image is rebuilt.
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1400];
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".img") && !strstr(e->d_name, ".lock")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            PETAL_ASSERT(truncate(path, 5000) == 0);
        }
    closedir(d);
    load(&s, "adapter_pfeiffer", 40, dir);
    CHECK(!first_diff(&p, &s) && s.params.nshared > 0, "a truncated image is rebuilt");
    ast_model_free(&s);
    // An image someone else owns is not trusted, even with the right header:
    // given other weights and another owner, it is rebuilt, not used.
    if (geteuid() == 0) {
        struct stat sb;
        d = opendir(dir);
        while ((e = readdir(d))) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (!strstr(e->d_name, ".img") || strstr(e->d_name, ".lock") || stat(path, &sb) ||
                sb.st_size < 100000)
                continue;  // the other layout's image is still truncated
            FILE *f = fopen(path, "r+b");
            PETAL_ASSERT(f && fseek(f, 8192, SEEK_SET) == 0);
            float junk[4096];
            for (int i = 0; i < 4096; i++) junk[i] = 1e9f;
            PETAL_ASSERT(fwrite(junk, sizeof junk, 1, f) == 1 && fclose(f) == 0);
            PETAL_ASSERT(chown(path, 4321, (gid_t)-1) == 0);
        }
        closedir(d);
        load(&s, "adapter_pfeiffer", 40, dir);
        CHECK(!first_diff(&p, &s) && s.params.nshared > 0, "another user's image is not used");
        ast_model_free(&s);
    }
    // A deleted backbone's image goes when the next image is built.
    char old[700];
    snprintf(old, sizeof old, "%s", bbfile);
    snprintf(bbfile, sizeof bbfile, "%s/other.h5", tmp);
    write_backbone(12);
    PETAL_ASSERT(unlink(old) == 0);
    // and so does what a build killed midway left (its process is gone)
    pid_t dead = spawn("exit", -1, -1);
    wait_ok(dead);
    char left[1400];
    snprintf(left, sizeof left, "%s/0123456789abcdef.img.tmp.%ld", dir, (long)dead);
    FILE *lf = fopen(left, "w");
    PETAL_ASSERT(lf && fclose(lf) == 0);
    load(&s, "linear", 40, dir);
    CHECK(count_images() == 1, "images of a deleted file are pruned (%d left)", count_images());
    CHECK(access(left, F_OK) != 0, "a dead build's temporary file is removed");
    ast_model_free(&s);
    ast_model_free(&p);
}

// Four processes start together on an empty folder: one image, equal models.
static void test_race(void) {
    snprintf(dir, sizeof dir, "%s/race", tmp);
    pid_t pids[4];
    for (int k = 0; k < 4; k++) pids[k] = spawn("race", -1, -1);
    int ok = 1;
    for (int k = 0; k < 4; k++) ok &= wait_ok(pids[k]);
    CHECK(ok, "racing processes load the same shared backbone");
    CHECK(count_images() == 1, "racing processes built one image (%d)", count_images());
}

static void test_unusable_folder(void) {
    snprintf(dir, sizeof dir, "%s", bbfile);  // a file, not a folder: mkdir fails
    ast_model p, s;
    load(&p, "adapter_pfeiffer", 40, NULL);
    load(&s, "adapter_pfeiffer", 40, dir);
    CHECK(!first_diff(&p, &s) && s.params.nshared == 0, "an unusable folder loads privately");
    CHECK(strstr(last_warn.msg, "not a folder") && strstr(last_warn.msg, "private copy"),
          "and says why: '%s'", last_warn.msg);
    ast_model_free(&s);
    load(&s, "adapter_pfeiffer", 40, NULL);
    CHECK(!last_warn.msg[0], "a private load has no warning: '%s'", last_warn.msg);
    ast_model_free(&p);
    ast_model_free(&s);
}

int main(int argc, char **argv) {
    if (argc == 4) {
        snprintf(bbfile, sizeof bbfile, "%s", argv[2]);
        snprintf(dir, sizeof dir, "%s", argv[3]);
        return child(argv[1]);
    }
    PETAL_ASSERT(mkdtemp(tmp));
    snprintf(bbfile, sizeof bbfile, "%s/bb.h5", tmp);
    snprintf(dir, sizeof dir, "%s/images", tmp);
    write_backbone(7);
    test_equal_and_mapped();
    test_two_processes();
    test_rebuilds();
    test_race();
    test_unusable_folder();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", tmp);
    return check_done("share");
}
