// What the store keeps of one trial: the core's trial record (status, per-fold
// metrics and histories, parameters, peak RSS) with the sweep's bookkeeping
// (id, settings, attempts, last error, host, version, time, early-stopping
// decision). One type for the worker's message, the per-trial record file,
// the row of results.h5 and the report's input.
#ifndef PETAL_RESULTS_RECORD_H
#define PETAL_RESULTS_RECORD_H
#include "core/trial.h"
#include "sweeps/spec.h"

typedef enum {
    RS_PENDING = 0,  // not started (or nothing recorded yet)
    RS_RUNNING,      // handed out, not finished (only in results.h5 while a sweep runs)
    RS_DONE,
    RS_FAILED,       // diverged, crashed, timed out, bad data: error says which
    RS_STOPPED,      // checkpointed on a stop request; resumes
    RS_PAUSED,       // early stopping paused it at a rung; its checkpoint is kept
    RS_COUNT
} results_status;
const char *results_status_name(int status);
int results_status_parse(const char *name);  // -1 when unknown

typedef struct {
    char id[SWEEP_ID_LEN + 1];
    int status;             // results_status
    char *config;           // the trial's identity text (owned)
    trial_record r;         // metrics, folds, histories, counts, label
    int attempts;           // runs started (retries included)
    char error[1024];       // the last failure's reason ("" when none)
    char host[64];
    char version[64];       // petal_version()
    char finished_at[32];   // ISO 8601 UTC of the last result
    int epochs_budget;      // epochs allowed in the last run (early stopping), 0 = all
    char decision[16];      // early stopping: "", "promoted", "paused", "stopped"
    int retryable;          // failed in a way a rerun may not repeat (crash, kill, timeout);
                            // travels in messages, not stored
} results_record;

void results_record_free(results_record *rec);

// Serialised form for pipes and MPI messages: a malloc'd byte buffer.
void results_record_pack(char **buf, size_t *len, const results_record *rec);
int results_record_unpack(results_record *rec, const char *buf, size_t len, petal_err *err);

// The per-trial record file RUN/trials/<id>/record.bin: the packed form and
// its XXH3-64 (a torn or damaged file fails the check), written to a temporary
// name and renamed (a kill at any instant leaves the old or the new file); not
// fsynced: results_store_flush makes records durable in groups.
int results_record_write(const results_record *rec, const char *path, petal_err *err);
int results_record_read(results_record *rec, const char *path, petal_err *err);

// Fills host, version and finished_at (now).
void results_record_stamp(results_record *rec);
#endif
