// Dataset loaders, protocols and few-shot subsets, on corpora made for the
// test: `petal data synth` output (ESC-50 and Speech Commands layouts, a few
// clips per class), hand-written UrbanSound8K and Fluent Speech Commands
// layouts (silent WAVs from sox), generic folder layouts, and broken copies of
// each for the error paths.
#include <ftw.h>
#include <spawn.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/csv.h"
#include "core/dataset.h"
#include "tests/check.h"

extern char **environ;
static char tmp[256];

// ---- file helpers ------------------------------------------------------------

static void mkdirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, 0755);
}

static void write_file(const char *path, const char *fmt, ...) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdirs(dir);
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "test: cannot write %s\n", path);
        exit(1);
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

static int run(char *const argv[]) {
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ)) return -1;
    int status;
    if (waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A 0.1 s silent 16 kHz WAV made by sox (the loaders only need it to exist,
// but it is a real file the front end can read).
static void silent_wav(const char *path) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    char *argv[] = {"sox", "-n", "-r", "16000", "-c", "1", "-b", "16", (char *)path, "trim", "0", "0.1", NULL};
    if (run(argv) != 0) {
        fprintf(stderr, "test: sox could not write %s\n", path);
        exit(1);
    }
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static void rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void copy_tree(const char *from, const char *to) {
    char *argv[] = {"cp", "-r", (char *)from, (char *)to, NULL};
    if (run(argv) != 0) {
        fprintf(stderr, "test: cp -r %s %s failed\n", from, to);
        exit(1);
    }
}

// Loads and expects failure naming `needle1` and `needle2` in the message.
static void expect_error(int layout, const char *root, const char *needle1, const char *needle2,
                         const char *what) {
    dataset ds;
    petal_err err = {{0}};
    int st = dataset_load(&ds, layout, root, 0, &err);
    CHECK(st == PETAL_EINPUT, "%s: status %d, want PETAL_EINPUT", what, st);
    CHECK(strstr(err.msg, needle1) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, needle1);
    if (needle2) CHECK(strstr(err.msg, needle2) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, needle2);
    CHECK(strchr(err.msg, '\n') == NULL, "%s: message is not one line", what);
    CHECK(ds.N == 0 && ds.items == NULL, "%s: failed load left items", what);
    if (!st) dataset_free(&ds);
}

// ---- CSV ------------------------------------------------------------------------

static void test_csv(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/t.csv", tmp);
    // BOM, CRLF, quoted comma, doubled quote, newline inside quotes, empty last field.
    write_file(path, "\xEF\xBB\xBF name , b,c\r\n\"x,1\",\"say \"\"hi\"\"\",\r\nplain,\"two\nlines\",z\r\n");
    csv_table t;
    petal_err err = {{0}};
    int st = csv_read(&t, path, &err);
    CHECK(st == PETAL_OK, "csv_read: %s", err.msg);
    if (st) return;
    CHECK(t.ncols == 3 && t.nrows == 2, "csv shape %d x %d", t.nrows, t.ncols);
    CHECK(csv_col(&t, "name") == 0 && csv_col(&t, "b") == 1 && csv_col(&t, "c") == 2 &&
              csv_col(&t, "d") == -1,
          "csv header lookup");
    CHECK(!strcmp(csv_field(&t, 0, 0), "x,1"), "quoted comma: '%s'", csv_field(&t, 0, 0));
    CHECK(!strcmp(csv_field(&t, 0, 1), "say \"hi\""), "doubled quote: '%s'", csv_field(&t, 0, 1));
    CHECK(!strcmp(csv_field(&t, 0, 2), ""), "empty last field");
    CHECK(!strcmp(csv_field(&t, 1, 1), "two\nlines"), "newline in quotes");
    CHECK(csv_line(&t, 1) == 3, "line of row 2: %d", csv_line(&t, 1));
    int col;
    CHECK(csv_require(&col, &t, "missing", &err) == PETAL_EINPUT && strstr(err.msg, path) &&
              strstr(err.msg, "missing"),
          "csv_require error: %s", err.msg);
    csv_free(&t);

    write_file(path, "a,b\n1,2\n3\n");
    st = csv_read(&t, path, &err);
    CHECK(st == PETAL_EINPUT && strstr(err.msg, path) && strstr(err.msg, ":3:"), "short row: %s", err.msg);
    write_file(path, "a,b\n\"1,2\n");
    st = csv_read(&t, path, &err);
    CHECK(st == PETAL_EINPUT && strstr(err.msg, "unterminated"), "open quote: %s", err.msg);
    snprintf(path, sizeof path, "%s/none.csv", tmp);
    st = csv_read(&t, path, &err);
    CHECK(st == PETAL_EINPUT && strstr(err.msg, path), "missing csv: %s", err.msg);
}

// ---- synthetic corpora: ESC-50 and Speech Commands layouts ----------------------

static void test_synth_corpora(void) {
    char out[512];
    snprintf(out, sizeof out, "%s/synth", tmp);
    // 5 per class: one clip per class in each ESC-50 fold; 3 speakers for speech.
    char *argv[] = {"synth", "--out", out, "--per-class", "5", "--seed", "3", NULL};
    int rc = cmd_data_synth(7, argv);
    CHECK(rc == 0, "petal data synth exit %d", rc);
    if (rc) return;

    // ESC-50: given the folder holding ESC-50/.
    dataset ds;
    petal_err err = {{0}};
    int st = dataset_load(&ds, DATASET_ESC50, out, 0, &err);
    CHECK(st == PETAL_OK, "esc50 load: %s", err.msg);
    if (!st) {
        CHECK(ds.K == 10 && ds.N == 50 && ds.n_folds == 5, "esc50 K=%d N=%d folds=%d", ds.K, ds.N, ds.n_folds);
        CHECK(!strcmp(ds.classes[0], "sine_low") && !strcmp(ds.classes[9], "buzz"), "esc50 class names");
        int bad_label = 0;
        for (int i = 0; i < ds.N; i++) {
            char suffix[16];
            snprintf(suffix, sizeof suffix, "-A-%d.wav", ds.items[i].label);
            size_t l = strlen(ds.items[i].path), sl = strlen(suffix);
            bad_label += l < sl || strcmp(ds.items[i].path + l - sl, suffix) ||
                         ds.items[i].path[strlen(ds.base) + 7] != '0' + ds.items[i].fold;
        }
        CHECK(bad_label == 0, "esc50: %d items whose label/fold disagree with the file name", bad_label);
        // Rotation: test fold k, valid fold k%5+1, train the rest; each fold is
        // test once and valid once over the 5 rotations.
        int idx[64], n[3], as_test[6] = {0}, as_valid[6] = {0};
        for (int k = 1; k <= 5; k++) {
            int seen[64] = {0};
            for (int s = 0; s < 3; s++) {
                st = dataset_split(idx, &n[s], &ds, s, k, &err);
                CHECK(st == PETAL_OK, "esc50 split: %s", err.msg);
                int want = s == DATASET_TEST ? k : s == DATASET_VALID ? k % 5 + 1 : -1;
                for (int j = 0; j < n[s]; j++) {
                    int f = ds.items[idx[j]].fold;
                    seen[idx[j]]++;
                    CHECK(want < 0 ? (f != k && f != k % 5 + 1) : f == want, "fold %d split %d has fold %d", k, s, f);
                    if (s == DATASET_TEST) as_test[f]++;
                    if (s == DATASET_VALID) as_valid[f]++;
                }
            }
            CHECK(n[0] == 30 && n[1] == 10 && n[2] == 10, "esc50 fold %d sizes %d/%d/%d", k, n[0], n[1], n[2]);
            int once = 1;
            for (int i = 0; i < ds.N; i++) once &= seen[i] == 1;
            CHECK(once, "esc50 fold %d: splits are not a partition", k);
        }
        for (int f = 1; f <= 5; f++)
            CHECK(as_test[f] == 10 && as_valid[f] == 10, "fold %d test %d valid %d times", f, as_test[f], as_valid[f]);
        CHECK(dataset_split(idx, &n[0], &ds, DATASET_TEST, 6, &err) == PETAL_EINPUT, "esc50 fold 6 accepted");
        CHECK(dataset_split(idx, &n[0], &ds, DATASET_TEST, 0, &err) == PETAL_EINPUT, "esc50 fold 0 accepted");
        // First-k few-shot follows CSV order within the train split.
        int tr[64], ntr, pick[64], counts[10];
        dataset_split(tr, &ntr, &ds, DATASET_TRAIN, 1, &err);
        int m = dataset_fewshot(pick, counts, &ds, tr, ntr, 2, 0, FEWSHOT_FIRST);
        CHECK(m == 20, "esc50 2-shot first-k: %d", m);
        dataset_free(&ds);
    }

    // Speech Commands: given the corpus folder itself.
    char gsc[600];
    snprintf(gsc, sizeof gsc, "%s/speech_commands_v0.02", out);
    st = dataset_load(&ds, DATASET_GSC, gsc, 0, &err);
    CHECK(st == PETAL_OK, "gsc load: %s", err.msg);
    if (!st) {
        static const char *words[10] = {"down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes"};
        CHECK(ds.K == 10 && ds.N == 50 && ds.n_folds == 1, "gsc K=%d N=%d", ds.K, ds.N);
        for (int c = 0; c < ds.K && c < 10; c++) CHECK(!strcmp(ds.classes[c], words[c]), "gsc class %d: %s", c, ds.classes[c]);
        int bad = 0;
        for (int i = 0; i < ds.N; i++) {
            const char *rel = ds.items[i].rel, *cls = ds.classes[ds.items[i].label];
            bad += strncmp(rel, cls, strlen(cls)) || rel[strlen(cls)] != '/' || !strstr(rel, "_nohash_");
        }
        CHECK(bad == 0, "gsc: %d items whose label is not their folder", bad);
        int idx[64], n[3];
        for (int s = 0; s < 3; s++) dataset_split(idx, &n[s], &ds, s, 1, &err);
        // 5 clips per word from 3 speakers (train, valid, test, train, valid).
        CHECK(n[0] == 20 && n[1] == 20 && n[2] == 10, "gsc split sizes %d/%d/%d", n[0], n[1], n[2]);
        // Speakers do not cross splits.
        int cross = 0;
        for (int i = 0; i < ds.N; i++)
            for (int j = 0; j < ds.N; j++)
                cross += !strncmp(strchr(ds.items[i].rel, '/'), strchr(ds.items[j].rel, '/'), 9) &&
                         ds.items[i].split != ds.items[j].split;
        CHECK(cross == 0, "gsc: a speaker appears in two splits");
        CHECK(dataset_split(idx, &n[0], &ds, DATASET_TEST, 2, &err) == PETAL_EINPUT, "gsc fold 2 accepted");
        dataset_free(&ds);
    }

    // Broken copies of the synthetic corpora.
    char bad[600], path[800];
    snprintf(bad, sizeof bad, "%s/bad_esc", tmp);
    mkdirs(bad);
    copy_tree(out, bad);  // bad/synth/...
    snprintf(bad, sizeof bad, "%s/bad_esc/synth", tmp);
    snprintf(path, sizeof path, "%s/ESC-50/meta/esc50.csv", bad);
    csv_table t;
    st = csv_read(&t, path, &err);
    CHECK(st == PETAL_OK, "re-read esc50.csv: %s", err.msg);
    if (!st) {
        int cf = csv_col(&t, "filename");
        const char *f0 = csv_field(&t, 0, cf), *f1 = csv_field(&t, 1, cf);
        char r0[64], r1[64];
        snprintf(r0, sizeof r0, "%s", f0);
        snprintf(r1, sizeof r1, "%s", f1);
        csv_free(&t);
        // Missing column.
        write_file(path, "filename,fold,category\n%s,1,sine_low\n", r0);
        expect_error(DATASET_ESC50, bad, path, "target", "esc50 missing column");
        // Unknown label (not a number).
        write_file(path, "filename,fold,target,category\n%s,1,dog,sine_low\n", r0);
        expect_error(DATASET_ESC50, bad, path, "unknown label", "esc50 bad target");
        // Same target, two names.
        write_file(path, "filename,fold,target,category\n%s,1,0,sine_low\n%s,2,0,sine_high\n", r0, r1);
        expect_error(DATASET_ESC50, bad, path, "unknown label", "esc50 inconsistent label");
        // Fold out of range.
        write_file(path, "filename,fold,target,category\n%s,6,0,sine_low\n", r0);
        expect_error(DATASET_ESC50, bad, path, "fold", "esc50 fold 6");
        // Empty class: targets 0 and 2, none 1.
        write_file(path, "filename,fold,target,category\n%s,1,0,a\n%s,2,2,c\n", r0, r1);
        expect_error(DATASET_ESC50, bad, path, "empty class", "esc50 empty class");
        // Missing audio.
        write_file(path, "filename,fold,target,category\n%s,1,0,a\nnot-there.wav,2,0,a\n", r0);
        expect_error(DATASET_ESC50, bad, path, "not-there.wav", "esc50 missing audio");
    }

    snprintf(bad, sizeof bad, "%s/bad_gsc", tmp);
    copy_tree(gsc, bad);
    snprintf(path, sizeof path, "%s/validation_list.txt", bad);
    write_file(path, "yes/deadbeef_nohash_0.wav\n");
    expect_error(DATASET_GSC, bad, path, "deadbeef_nohash_0.wav", "gsc missing listed file");
    write_file(path, "maybe/deadbeef_nohash_0.wav\n");
    expect_error(DATASET_GSC, bad, path, "unknown label", "gsc unknown word in list");
    write_file(path, "\n");
    snprintf(path, sizeof path, "%s/testing_list.txt", bad);
    unlink(path);
    expect_error(DATASET_GSC, bad, path, "cannot open", "gsc missing testing list");
    write_file(path, "\n");
    snprintf(path, sizeof path, "%s/wow", bad);
    mkdirs(path);
    expect_error(DATASET_GSC, bad, path, "empty class", "gsc empty word folder");
}

// ---- hand-written UrbanSound8K ----------------------------------------------------

static void test_us8k(void) {
    char root[512], p[1024];
    snprintf(root, sizeof root, "%s/us8k", tmp);
    // 6 clips over folds 1, 2 and 10; three classes. CRLF, a quoted file name
    // and an extra quoted column with a comma exercise the CSV reader.
    const char *rows[6][4] = {{"100032-3-0-0.wav", "1", "3", "dog_bark"},
                              {"100263-2-0-117.wav", "1", "2", "children_playing"},
                              {"100648-1-0-0.wav", "2", "1", "car_horn"},
                              {"101415-3-0-2.wav", "2", "3", "dog_bark"},
                              {"102102-1-0-0.wav", "10", "1", "car_horn"},
                              {"102305-2-0-0.wav", "10", "2", "children_playing"}};
    // Plus one air_conditioner clip: classID 0 missing would be an empty class.
    char csv[4096];
    int len = snprintf(csv, sizeof csv, "slice_file_name,fsID,start,end,salience,fold,classID,class,note\r\n");
    for (int i = 0; i < 6; i++) {
        len += snprintf(csv + len, sizeof csv - (size_t)len, "\"%s\",100,0.0,0.1,1,%s,%s,%s,\"x, y\"\r\n",
                        rows[i][0], rows[i][1], rows[i][2], rows[i][3]);
        snprintf(p, sizeof p, "%s/UrbanSound8K/audio/fold%s/%s", root, rows[i][1], rows[i][0]);
        silent_wav(p);
    }
    snprintf(csv + len, sizeof csv - (size_t)len, "103199-0-0-0.wav,100,0,0.1,1,2,0,air_conditioner,\r\n");
    snprintf(p, sizeof p, "%s/UrbanSound8K/metadata/UrbanSound8K.csv", root);
    write_file(p, "%s", csv);
    snprintf(p, sizeof p, "%s/UrbanSound8K/audio/fold2/103199-0-0-0.wav", root);
    silent_wav(p);

    dataset ds;
    petal_err err = {{0}};
    int st = dataset_load(&ds, DATASET_US8K, root, 0, &err);
    CHECK(st == PETAL_OK, "us8k load: %s", err.msg);
    if (!st) {
        CHECK(ds.N == 7 && ds.K == 4 && ds.n_folds == 10, "us8k N=%d K=%d folds=%d", ds.N, ds.K, ds.n_folds);
        CHECK(!strcmp(ds.classes[0], "air_conditioner") && !strcmp(ds.classes[3], "dog_bark"), "us8k names");
        CHECK(ds.items[0].label == 3 && ds.items[0].fold == 1, "us8k row 1");
        int idx[8], n[3];
        for (int s = 0; s < 3; s++) dataset_split(idx, &n[s], &ds, s, 2, &err);
        CHECK(n[0] == 4 && n[1] == 0 && n[2] == 3, "us8k fold 2 sizes %d/%d/%d", n[0], n[1], n[2]);
        for (int s = 0; s < 3; s++) dataset_split(idx, &n[s], &ds, s, 10, &err);
        CHECK(n[0] == 5 && n[1] == 0 && n[2] == 2, "us8k fold 10 sizes %d/%d/%d", n[0], n[1], n[2]);
        CHECK(dataset_split(idx, &n[0], &ds, DATASET_TEST, 11, &err) == PETAL_EINPUT, "us8k fold 11");
        dataset_free(&ds);
    }
    snprintf(p, sizeof p, "%s/UrbanSound8K/metadata/UrbanSound8K.csv", root);
    write_file(p, "slice_file_name,fold,classID,class\n100032-3-0-0.wav,1,3,dog_bark\n100648-1-0-0.wav,1,3,car_horn\n");
    expect_error(DATASET_US8K, root, p, "unknown label", "us8k label with two names");
    write_file(p, "slice_file_name,fold,classID,class\n100032-3-0-0.wav,2,0,dog_bark\n");
    expect_error(DATASET_US8K, root, p, "fold2/100032-3-0-0.wav", "us8k file in the wrong fold folder");
    write_file(p, "slice_file_name,fold,class\n100032-3-0-0.wav,1,dog_bark\n");
    expect_error(DATASET_US8K, root, p, "classID", "us8k missing column");
}

// ---- hand-written Fluent Speech Commands ------------------------------------------

static void test_fsc(void) {
    char root[512], base[600], p[1024];
    snprintf(root, sizeof root, "%s/fsc", tmp);
    snprintf(base, sizeof base, "%s/fluent_speech_commands_dataset", root);
    // The real header starts with an unnamed index column.
    const char *hdr = ",path,speakerId,transcription,action,object,location\n";
    const char *split_rows[3] = {
        "0,wavs/speakers/s1/a.wav,s1,Turn on the lights,activate,lights,none\n"
        "1,wavs/speakers/s1/b.wav,s1,\"Switch on the lights, please\",activate,lights,none\n"
        "2,wavs/speakers/s2/c.wav,s2,Bedroom heat up,increase,heat,bedroom\n",
        "0,wavs/speakers/s3/d.wav,s3,Lights off,deactivate,lights,none\n",
        "0,wavs/speakers/s4/e.wav,s4,Use Chinese,change language,Chinese,none\n"
        "1,wavs/speakers/s4/f.wav,s4,Lights on,activate,lights,none\n"};
    const char *names[3] = {"train", "valid", "test"};
    const char *wavs[6] = {"s1/a", "s1/b", "s2/c", "s3/d", "s4/e", "s4/f"};
    for (int s = 0; s < 3; s++) {
        snprintf(p, sizeof p, "%s/data/%s_data.csv", base, names[s]);
        write_file(p, "%s%s", hdr, split_rows[s]);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/wavs/speakers/%s.wav", base, wavs[i]);
        silent_wav(p);
    }
    dataset ds;
    petal_err err = {{0}};
    int st = dataset_load(&ds, DATASET_FSC, root, 0, &err);
    CHECK(st == PETAL_OK, "fsc load: %s", err.msg);
    if (!st) {
        // Intents over all splits, sorted; one exists only in test.
        static const char *want[4] = {"activate/lights/none", "change language/Chinese/none",
                                      "deactivate/lights/none", "increase/heat/bedroom"};
        CHECK(ds.K == 4 && ds.N == 6, "fsc K=%d N=%d", ds.K, ds.N);
        for (int c = 0; c < ds.K && c < 4; c++) CHECK(!strcmp(ds.classes[c], want[c]), "fsc class %d: %s", c, ds.classes[c]);
        static const int labels[6] = {0, 0, 3, 2, 1, 0}, splits[6] = {0, 0, 0, 1, 2, 2};
        for (int i = 0; i < ds.N && i < 6; i++)
            CHECK(ds.items[i].label == labels[i] && ds.items[i].split == splits[i], "fsc item %d: label %d split %d", i,
                  ds.items[i].label, ds.items[i].split);
        int idx[8], n[3];
        for (int s = 0; s < 3; s++) dataset_split(idx, &n[s], &ds, s, 1, &err);
        CHECK(n[0] == 3 && n[1] == 1 && n[2] == 2, "fsc split sizes %d/%d/%d", n[0], n[1], n[2]);
        dataset_free(&ds);
    }
    snprintf(p, sizeof p, "%s/data/valid_data.csv", base);
    write_file(p, ",path,speakerId,transcription,object,location\n0,wavs/speakers/s3/d.wav,s3,x,lights,none\n");
    expect_error(DATASET_FSC, root, p, "action", "fsc missing column");
    write_file(p, "%s0,wavs/speakers/s9/zzz.wav,s9,x,activate,lights,none\n", hdr);
    expect_error(DATASET_FSC, root, p, "zzz.wav", "fsc missing audio");
}

// ---- generic folder layout and few-shot -----------------------------------------------

static int same(const int *a, int na, const int *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

static void test_folder_and_fewshot(void) {
    char root[512], p[1024];
    snprintf(root, sizeof root, "%s/folder", tmp);
    // 4 classes x 40 files (empty files: the loader does not decode) plus a
    // class with only 2, a FLAC, an ignored text file and an ignored _noise/.
    const char *cls[5] = {"alpha", "beta", "delta", "gamma", "tiny"};
    for (int c = 0; c < 5; c++)
        for (int i = 0; i < (c == 4 ? 2 : 40); i++) {
            snprintf(p, sizeof p, "%s/%s/clip%02d.%s", root, cls[c], i, i == 7 ? "flac" : "wav");
            write_file(p, "");
        }
    snprintf(p, sizeof p, "%s/alpha/readme.txt", root);
    write_file(p, "not audio");
    snprintf(p, sizeof p, "%s/_noise/n.wav", root);
    write_file(p, "");

    dataset ds, ds2;
    petal_err err = {{0}};
    int st = dataset_load(&ds, DATASET_FOLDER, root, 11, &err);
    CHECK(st == PETAL_OK, "folder load: %s", err.msg);
    if (st) return;
    CHECK(ds.K == 5 && ds.N == 162, "folder K=%d N=%d", ds.K, ds.N);
    CHECK(!strcmp(ds.classes[2], "delta") && !strcmp(ds.classes[4], "tiny"), "folder classes sorted");
    int idx[200], n[3];
    for (int s = 0; s < 3; s++) dataset_split(idx, &n[s], &ds, s, 1, &err);
    // Per class of 40: 4 valid, 4 test; "tiny" (2) all train.
    CHECK(n[0] == 4 * 32 + 2 && n[1] == 16 && n[2] == 16, "folder seeded split %d/%d/%d", n[0], n[1], n[2]);
    int split11[200];
    for (int i = 0; i < ds.N; i++) split11[i] = ds.items[i].split;
    st = dataset_load(&ds2, DATASET_FOLDER, root, 11, &err);
    int same_split = 1;
    for (int i = 0; i < ds2.N; i++) same_split &= ds2.items[i].split == split11[i];
    CHECK(!st && same_split, "folder split not reproducible from its seed");
    dataset_free(&ds2);
    st = dataset_load(&ds2, DATASET_FOLDER, root, 12, &err);
    int diff = 0;
    for (int i = 0; i < ds2.N; i++) diff += ds2.items[i].split != split11[i];
    CHECK(!st && diff > 0, "folder split ignores its seed");
    dataset_free(&ds2);

    // ---- few-shot on the 40-per-class items (all items, as one split) ----
    int all[200], N = ds.N;
    for (int i = 0; i < N; i++) all[i] = i;
    int a[200], b[200], counts[5];
    int na = dataset_fewshot(a, counts, &ds, all, N, 4, 1, FEWSHOT_UNIFORM);
    CHECK(na == 4 * 4 + 2, "4-shot size %d", na);
    CHECK(counts[0] == 4 && counts[3] == 4 && counts[4] == 2, "4-shot counts");
    char msg[256];
    int nshort = dataset_fewshot_short(msg, sizeof msg, &ds, counts, 4);
    CHECK(nshort == 1 && strstr(msg, "tiny (2)"), "short class report: %d '%s'", nshort, msg);
    int per[5] = {0};
    for (int j = 0; j < na; j++) per[ds.items[a[j]].label]++;
    CHECK(per[0] == 4 && per[1] == 4 && per[2] == 4 && per[3] == 4 && per[4] == 2, "4-shot per class");
    int sorted = 1;
    for (int j = 1; j < na; j++) sorted &= a[j] > a[j - 1];
    CHECK(sorted, "few-shot output not ascending");
    int nb = dataset_fewshot(b, NULL, &ds, all, N, 4, 1, FEWSHOT_UNIFORM);
    CHECK(same(a, na, b, nb), "same seed, different subset");
    nb = dataset_fewshot(b, NULL, &ds, all, N, 4, 2, FEWSHOT_UNIFORM);
    CHECK(!same(a, na, b, nb), "other seed, same subset");
    // Independent of the order items are given in.
    int rev[200];
    for (int i = 0; i < N; i++) rev[i] = all[N - 1 - i];
    nb = dataset_fewshot(b, NULL, &ds, rev, N, 4, 1, FEWSHOT_UNIFORM);
    CHECK(same(a, na, b, nb), "uniform subset depends on item order");
    // Nested: the 4-shot set is inside the 8-shot set of the same seed.
    nb = dataset_fewshot(b, NULL, &ds, all, N, 8, 1, FEWSHOT_UNIFORM);
    int inside = 0;
    for (int j = 0; j < na; j++)
        for (int l = 0; l < nb; l++) inside += a[j] == b[l];
    CHECK(nb == 4 * 8 + 2 && inside == na, "4-shot not nested in 8-shot (%d of %d)", inside, na);
    // First-k mode: exactly the first k per class in idx order.
    nb = dataset_fewshot(b, NULL, &ds, all, N, 3, 99, FEWSHOT_FIRST);
    int first_ok = nb == 3 * 4 + 2;
    for (int j = 0; j < nb && first_ok; j++) {
        int it = b[j], c = ds.items[it].label, rank = 0;
        for (int i = 0; i < it; i++) rank += ds.items[i].label == c;
        first_ok = rank < 3;
    }
    CHECK(first_ok, "first-k mode does not take the first k");
    // Uniform: over 400 seeds every clip of a 40-clip class is drawn about
    // 400 * 4 / 40 = 40 times; first-k would draw 4 clips 400 times.
    int freq[200] = {0};
    for (int s = 0; s < 400; s++) {
        int m = dataset_fewshot(b, NULL, &ds, all, N, 4, (uint64_t)s + 1000, FEWSHOT_UNIFORM);
        for (int j = 0; j < m; j++) freq[b[j]]++;
    }
    int lo = 1 << 30, hi = 0;
    for (int i = 0; i < N; i++) {
        if (ds.items[i].label == 4) continue;
        lo = freq[i] < lo ? freq[i] : lo;
        hi = freq[i] > hi ? freq[i] : hi;
    }
    CHECK(lo >= 15 && hi <= 70, "few-shot draw not uniform: counts %d..%d (expected ~40)", lo, hi);
    dataset_free(&ds);

    // ---- list files ----
    snprintf(p, sizeof p, "%s/valid.txt", root);
    write_file(p, "alpha/clip00.wav\nbeta/clip01.wav\n");
    snprintf(p, sizeof p, "%s/test.txt", root);
    write_file(p, "./gamma/clip02.wav\r\n\r\ntiny/clip00.wav\n");
    st = dataset_load(&ds, DATASET_FOLDER, root, 11, &err);
    CHECK(st == PETAL_OK, "folder with lists: %s", err.msg);
    if (!st) {
        for (int s = 0; s < 3; s++) dataset_split(idx, &n[s], &ds, s, 1, &err);
        CHECK(n[0] == 158 && n[1] == 2 && n[2] == 2, "lists without train.txt: %d/%d/%d", n[0], n[1], n[2]);
        dataset_free(&ds);
    }
    snprintf(p, sizeof p, "%s/train.txt", root);
    write_file(p, "alpha/clip07.flac\ndelta/clip10.wav\n");
    st = dataset_load(&ds, DATASET_FOLDER, root, 11, &err);
    CHECK(st == PETAL_OK, "folder with train list: %s", err.msg);
    if (!st) {
        for (int s = 0; s < 3; s++) dataset_split(idx, &n[s], &ds, s, 1, &err);
        CHECK(ds.N == 6 && n[0] == 2 && n[1] == 2 && n[2] == 2, "lists with train.txt: N=%d %d/%d/%d", ds.N,
              n[0], n[1], n[2]);
        dataset_free(&ds);
    }
    write_file(p, "alpha/clip00.wav\n");
    expect_error(DATASET_FOLDER, root, "valid.txt:1", "already in the train list", "file in two lists");
    write_file(p, "omega/clip00.wav\n");
    expect_error(DATASET_FOLDER, root, p, "unknown label", "list names an unknown class");
    unlink(p);
    snprintf(p, sizeof p, "%s/empty", root);
    mkdirs(p);
    expect_error(DATASET_FOLDER, root, p, "empty class", "folder empty class");

    snprintf(p, sizeof p, "%s/nowhere", tmp);
    expect_error(DATASET_FOLDER, p, p, "no such directory", "missing root");
    expect_error(DATASET_ESC50, tmp, "esc50.csv", "cannot open", "no ESC-50 here");
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/petal-test-dataset-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    CHECK(dataset_layout_parse("esc50") == DATASET_ESC50 && dataset_layout_parse("folder") == DATASET_FOLDER &&
              dataset_layout_parse("x") == -1,
          "layout names");
    double t0 = petal_now();
    test_csv();
    test_synth_corpora();
    test_us8k();
    test_fsc();
    test_folder_and_fewshot();
    printf("test_dataset: %.1f s\n", petal_now() - t0);
    rm_rf(tmp);
    return check_done("test_dataset");
}
