// libFuzzer target: the trial record's unpacker, the one reader of what worker
// ranks send and of RUN/trials/<id>/record.bin (whose checksum is checked
// before it: this reads what passed it). Each input is unpacked; a refused one
// must leave nothing allocated, an accepted one must pack again into bytes that
// unpack and pack to themselves (strings cut to their fields' sizes settle on
// the first round). The seed, a record of two folds with histories, is written
// into the corpus folder (the last argument) when it has none.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "results/record.h"

static void seed(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seed", dir);
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode) || !stat(path, &sb)) return;
    results_record rec = {.status = RS_DONE, .config = "method: lora\nlora.rank: 8\n", .attempts = 1};
    snprintf(rec.id, sizeof rec.id, "0123456789ab");
    snprintf(rec.decision, sizeof rec.decision, "promoted");
    results_record_stamp(&rec);
    fold_record folds[2] = {{.fold = 1, .epochs = 2, .best_epoch = 2, .test_acc = 0.5},
                            {.fold = 2, .epochs = 1, .status = TRIAL_FAILED}};
    epoch_record hist[2] = {{.train_loss = 1.0, .valid_acc = 0.25}, {.train_loss = 0.5, .valid_acc = 0.5}};
    folds[0].history = hist, folds[1].history = hist;
    snprintf(folds[1].error, sizeof folds[1].error, "fold 2 diverged");
    rec.r.folds = folds, rec.r.n_folds = 2, rec.r.test_acc_mean = 0.5;
    snprintf(rec.r.label, sizeof rec.r.label, "LoRA r=8");
    char *buf;
    size_t len;
    results_record_pack(&buf, &len, &rec);
    FILE *f = fopen(path, "wb");
    if (f) fwrite(buf, 1, len, f), fclose(f);
    free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (*argc > 1 && (*argv)[*argc - 1][0] != '-') seed((*argv)[*argc - 1]);
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    results_record a, b;
    petal_err err;
    if (results_record_unpack(&a, (const char *)data, size, &err)) return 0;
    char *p1, *p2;
    size_t n1, n2;
    results_record_pack(&p1, &n1, &a);
    if (results_record_unpack(&b, p1, n1, &err)) abort();  // its own packing refused
    results_record_pack(&p2, &n2, &b);
    if (n1 != n2 || memcmp(p1, p2, n1)) abort();  // not a fixed point
    free(p1), free(p2);
    results_record_free(&a), results_record_free(&b);
    return 0;
}
