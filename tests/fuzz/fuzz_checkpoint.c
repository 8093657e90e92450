// libFuzzer target: the checkpoint reader's trust boundary. A valid
// checkpoint of a tiny synthetic trial is written once; each input then
// rewrites its fields (9-byte records: a selector byte, then an int64 value)
// -- the scalar attributes, K, entries of the epoch's order, the format and
// config strings -- and the trial resumes from it for two steps. A damaged
// field must be refused by checkpoint_load; anything it accepts must train
// without a sanitizer report (ASan found heap overflows from pos and order).
#include <hdf5.h>
#include <string.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/features.h"
#include "core/h5.h"
#include "core/trial.h"

static trainer t;
static trial_data d;
static char tmpl[64], work[64], *ident;

static void setup(void) {
    config_kv kv = {0};
    trial_settings ts;
    ast_config cfg;
    petal_err err, warn;
    config_set(&kv, "train.epochs", "2", "fuzz", 0, 0);
    if (trial_settings_resolve(&ts, &kv, &err) || trial_data_load(&d, &ts, 1, NULL, &err) ||
        trial_model_config(&cfg, &ts, d.K, &err))
        abort();
    trainer_config tc = {.epochs = ts.epochs, .batch = ts.batch, .seed = 1,
                         .opt = adamw_defaults(ts.lr)};
    if (trainer_init(&t, &cfg, &ts.method, &tc, &d.split[0], &d.split[1], &d.split[2], NULL,
                     &warn, &err))
        abort();
    ident = trial_identity(&kv, 1);
    snprintf(tmpl, sizeof tmpl, "/tmp/petal_fuzz_ckpt_%d.h5", (int)getpid());
    snprintf(work, sizeof work, "/tmp/petal_fuzz_ckpt_%d_w.h5", (int)getpid());
    t.stop_at_step = 3;
    if (trainer_run(&t, tmpl, ident, &err) != PETAL_STOPPED) abort();
    config_free(&kv);
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (!ident) setup();
    copy_file(tmpl, work);
    static const char *attrs[] = {"epoch", "pos", "step", "adam_step", "best_epoch", "done",
                                  "right", "n_train", "n_state", "K"};
    h5_quiet q = h5_quiet_begin();
    hid_t f = H5Fopen(work, H5F_ACC_RDWR, H5P_DEFAULT);
    for (size_t o = 0; f >= 0 && o + 9 <= size; o += 9) {
        int sel = data[o] % 13;
        long long v;
        memcpy(&v, data + o + 1, 8);
        if (sel < 10) {
            H5Adelete(f, attrs[sel]);
            h5_put_i64(f, attrs[sel], v % 1000 == v ? v : v % 200);  // mostly near-valid values
        } else if (sel == 10) {  // one order entry
            hid_t ds = H5Dopen2(f, "order", H5P_DEFAULT);
            hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
            hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : 0;
            if (n > 0) {
                int *ord = malloc(sizeof(int) * (size_t)n);
                H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ord);
                ord[(unsigned long long)v % (unsigned long long)n] = (int)(v >> 32);
                H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ord);
                free(ord);
            }
            if (sp >= 0) H5Sclose(sp);
            if (ds >= 0) H5Dclose(ds);
        } else {  // the format or config text, cut short
            const char *name = sel == 11 ? "format" : "config";
            char *s = h5_get_str(f, name);
            if (s) {
                s[(unsigned long long)v % (strlen(s) + 1)] = 0;
                H5Adelete(f, name);
                h5_put_str(f, name, s);
                free(s);
            }
        }
    }
    if (f >= 0) H5Fclose(f);
    h5_quiet_end(q);
    petal_err err;
    if (checkpoint_load(&t, work, ident, &err) == PETAL_OK && !t.done) {
        t.stop_at_step = t.step + 2;
        trainer_run(&t, NULL, ident, &err);
    }
    unlink(work);
    return 0;
}
