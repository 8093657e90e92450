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
int cmd_sweep(int argc, char **argv);
int cmd_results(int argc, char **argv);
int cmd_report(int argc, char **argv);
// Clusters (cmd/cmd_slurm.c, cmd/cmd_status.c): batch scripts and a run's progress.
int cmd_slurm(int argc, char **argv);
int cmd_status(int argc, char **argv);
// `petal --version`, `petal version` (cmd/cmd_version.c).
int cmd_version(int argc, char **argv);
// Front end (cmd/cmd_fbank.c): `petal data fbank ...`, `petal bench fbank ...`.
int cmd_data_fbank(int argc, char **argv);
int cmd_bench_fbank(int argc, char **argv);
// Datasets (cmd/cmd_synth.c): `petal data synth ...`.
int cmd_data_synth(int argc, char **argv);
#endif
