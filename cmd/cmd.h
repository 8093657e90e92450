// Subcommands of the one `petal` binary. Each takes argv without "petal"
// (argv[0] is the subcommand name) and returns the process exit code:
// 0 ok, 1 failure, 2 usage or input error.
#ifndef PETAL_CMD_H
#define PETAL_CMD_H

int cmd_train(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_predict(int argc, char **argv);
// Front end (cmd/cmd_fbank.c): `petal data fbank ...`, `petal bench fbank ...`.
int cmd_data_fbank(int argc, char **argv);
int cmd_bench_fbank(int argc, char **argv);
// Datasets (cmd/cmd_synth.c): `petal data synth ...`.
int cmd_data_synth(int argc, char **argv);


#include <stdio.h>

#include "core/config.h"
// One trial from flat settings, shared by `petal train`, `pretrain` and `demo`
// (cmd/cmd_train.c): every fold asked for, with checkpoints under out, the
// best model as a backbone file when save_backbone is set.
typedef struct {
    const char *out;            // checkpoint folder, or NULL
    const char *save_backbone;  // backbone file to write at the end, or NULL
    long stop_after;            // stop as if signalled after this many steps; -1 never
    FILE *log;                  // history and result lines; NULL = quiet
    const char *share_dir;      // node-wide backbone images (args_backbone_cache); NULL = private
} train_opts;
typedef struct {
    int folds;
    double acc_mean, acc_std, seconds;
    size_t trainable, total;
} train_outcome;
int train_run(train_outcome *o, const config_kv *kv, const train_opts *opt, petal_err *err);
#include "core/trialspec.h"
// A trial's model config: the backbone file's architecture at the trial's
// frames, or a random backbone of model.size; K classes.
int trial_model_config(ast_config *cfg, const trial_spec *ts, int K, petal_err *err);
#endif
