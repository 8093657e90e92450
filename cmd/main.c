// petal: one binary, git-style subcommands.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/gemm.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} subcommand;

static const subcommand subcommands[] = {
    {"train", cmd_train, "run one trial (a method on a dataset fold), with checkpoints"},
    {"pretrain", cmd_pretrain, "train a backbone on a corpus and write it as a backbone file"},
    {"model", cmd_model, "model configs (parameter counts), backbone import and init"},
    {"predict", cmd_predict, "classify audio files with a backbone's classifier"},
    {"bench", cmd_bench, "time one training step configuration (one bench line)"},
    {"data", cmd_data, "audio front end and datasets (fbank, synth corpora)"},
    {"sweep", cmd_sweep, "run a study (YAML spec) into a results store, in one process or over MPI"},
    {"results", cmd_results, "check, repair and list a results store"},
    {"report", cmd_report, "tables and figures of a results store (md, csv, tex, html)"},
    {"slurm", cmd_slurm, "write (and submit) a SLURM batch script for a sweep: MPI or a job array"},
    {"status", cmd_status, "a sweep's done / running / failed / left trials and its SLURM jobs"},
    {"version", cmd_version, "petal's version, commit and the library versions it runs with"},
    {"demo", cmd_demo, "the small embedded study that `make demo` runs"},
};
#define NSUB (int)(sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: petal <command> [options]\n\ncommands:\n");
    for (int i = 0; i < NSUB; i++)
        fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].help);
    fprintf(f, "\n`petal <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    // OpenMP threads that finish a parallel region should sleep, not spin: when
    // anything else runs on the node (another rank, a data loader, a test), a
    // spinning pool stalls every barrier for a scheduler slice (a tiny trial
    // took 21 s instead of 0.08 s beside one busy process). libgomp reads the
    // setting at start-up, so set it and start again; an explicit
    // OMP_WAIT_POLICY in the environment wins.
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);  // on failure, carry on as we are
    }
    petal_err err;
    if (gemm_select(NULL, &err)) {  // PETAL_GEMM names the GEMM engine
        fprintf(stderr, "petal: %s\n", err.msg);
        return 2;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) return cmd_version(argc - 1, argv + 1);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < NSUB; i++)
        if (!strcmp(argv[1], subcommands[i].name)) return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "petal: unknown command '%s' (see petal --help)\n", argv[1]);
    return 2;
}
