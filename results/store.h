// The results store of a sweep, RUN/:
//   RUN/spec.yaml               the spec the last sweep ran (results.h5 keeps it too)
//   RUN/trials/<id>/record.bin  each finished trial's record (results/record.h): the truth
//   RUN/trials/<id>/fold<k>.h5  the trial's checkpoints (best state, exact resume)
//   RUN/results.h5              the table, rebuilt from the records
//   RUN/lock                    one writer at a time (flock: a killed sweep leaves no lock)
// Crash safety by design: every file is written to a temporary name and
// renamed, so kill -9 at any instant leaves each file old or new, never partial
// (results.h5 and the small text files are also fsynced with their folder:
// file_commit).
// A finished trial is safe from any process kill once its record is renamed
// into place (the page cache outlives the process). Against power loss the
// records are made durable in groups, not one by one (an fsync per record cost
// more than the 1 ms a trial the sweep may spend): one syncfs of RUN's file
// system before each results.h5 rebuild and at the end, so results.h5 never
// lists a record that is not on disk; a record torn by a power loss in between
// is found when the store opens (moved aside, the trial runs again). results.h5
// is rebuilt from the records in memory (write-new-then-rename, fsynced) at
// intervals that keep its cost under ~5% of the sweep's time, and at the end;
// `petal results check` rebuilds it from the records at any time.
//
// results.h5 (h5py: pandas.DataFrame(h5py.File("RUN/results.h5")["/trials"][()])):
//   attributes: format "petal-results 1", study, spec (text), spec_hash,
//     petal_version, libraries, host, created, updated, per-status counts
//     (n_done, n_paused, ...), early_stop ("none", "asha min_epochs=1 eta=3",
//     "median ..."), epochs_spent (int64: the epochs every trial has trained,
//     all folds, each epoch once however often the trial paused)
//   /trials    one row per trial of the spec (compound): id, status, method,
//     label, test_acc, test_acc_std, best_valid_acc, best_epoch, epochs, folds,
//     seconds, trainable, total, peak_rss_mib, attempts, epochs_budget, decision,
//     error, config, host, petal_version, finished_at, rung (early stopping:
//     the rung k whose epoch min_epochs * eta^k the trial's first fold stopped
//     at, or one past the last rung for a trial run to train.epochs; -1 when
//     none), max_epochs (train.epochs: the full budget), then one typed column per
//     setting that varies between trials ("lora.rank" int64 with -1 when unset,
//     "train.lr" float64 with NaN when unset, text settings as strings)
//   /history   every recorded epoch of every trial (compound; paused and
//     stopped trials up to where they stopped: join /trials on id for the
//     status): id, fold, epoch, train_loss, train_acc, valid_loss, valid_acc,
//     lr, seconds
//   Early stopping (a spec's early_stop) leaves each trial's last decision:
//     status paused + decision "paused" (ASHA, below the top 1/eta of its rung;
//     checkpoint kept, may be promoted later) or "stopped" (median rule, for
//     good); status stopped + decision "promoted" / "continued" (goes on with the
//     next rung's budget); status done (ran to train.epochs). epochs_budget is
//     the budget of the trial's last run, epochs the epochs it has trained.
//   /checkpoints/<id>/fold<k>  external links to RUN/trials/<id>/fold<k>.h5
#ifndef PETAL_RESULTS_STORE_H
#define PETAL_RESULTS_STORE_H
#include "results/record.h"
#include "sweeps/spec.h"

// results.h5's "format" attribute: a store of another format is refused.
#define RESULTS_FORMAT "petal-results 1"

typedef struct {
    char dir[4096];
    int lock_fd;            // -1 when not the writer
    const sweep_spec *spec;
    results_record *rows;   // (spec->n) one per trial, spec order; RS_PENDING without a record
    int n_orphans;          // records of trials the spec no longer has (kept on disk)
    double last_rebuild, rebuild_seconds;
    int dirty;              // rows changed since results.h5 was written
    char created[32];
} results_store;

// Opens RUN as its one writer: creates the folders, takes the lock (a sweep
// already running on RUN is an input error naming its pid), stores the spec
// text, loads every record of the spec's trials (a damaged record is moved
// aside to record.bin.damaged, reported in *notes, and its trial runs again).
// shard: array tasks (many writers, records only: no lock, no results.h5).
int results_store_open(results_store *s, const char *dir, const sweep_spec *spec, int shard,
                       const petal_notes *notes, petal_err *err);
// Records trial i's result: its record file first (the truth), then the row.
int results_store_put(results_store *s, int i, const results_record *rec, petal_err *err);
// Sets a row's status in memory only (running: shown in results.h5 while it runs).
void results_store_mark(results_store *s, int i, int status);
// Makes the records written so far durable (syncfs), then rewrites results.h5
// from the rows, when due (or always with force). Shards: the records only.
int results_store_flush(results_store *s, int force, petal_err *err);
void results_store_close(results_store *s);

// The folder of trial id: RUN/trials/<id> (created when missing).
int results_trial_dir(char *out, size_t n, const char *run, const char *id, petal_err *err);

// ---- reading results.h5 (reports, `petal results ls`, `petal status`) ----------
typedef struct {
    char id[SWEEP_ID_LEN + 1], status[12], method[32], label[128], decision[16];
    double test_acc, test_acc_std, best_valid_acc, seconds, peak_rss_mib;
    long long best_epoch, epochs, folds, trainable, total, attempts, epochs_budget;
    long long rung, max_epochs;  // early stopping (above); -1 and 0 in a store without the columns
    char *error, *config;  // owned
    char host[64], version[64], finished_at[32];
} results_row;

typedef struct {
    results_row *rows;
    int n;
    char *study, *spec, *spec_hash, *version, *libraries, *host, *created, *updated;
    char *early_stop;          // the attribute ("none", "asha min_epochs=1 eta=3", ...); NULL when absent
    long long epochs_spent;    // the attribute; -1 when absent
} results_table;

// Reads RUN/results.h5 (a store of another format version, a missing or
// damaged file: PETAL_EINPUT naming it).
int results_table_read(results_table *t, const char *run, petal_err *err);
void results_table_free(results_table *t);
#endif
