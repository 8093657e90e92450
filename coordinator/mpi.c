// ==== The MPI executor (rank 0's view of the worker ranks) and the entry point ====
#include "coordinator/mpi.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threads.h"
#include "worker/rank.h"

int coord_mpi_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int coord_mpi_rank_hint(void) {
    const char *names[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};
    for (int i = 0; i < 3; i++)
        if (getenv(names[i])) return atoi(getenv(names[i]));
    return 0;
}

void coord_backoff(long *us, long cap) {
    struct timespec ts = {0, *us * 1000};
    nanosleep(&ts, NULL);
    *us = *us * 2 > cap ? cap : *us * 2;
}

// Rank 0's view: when it last exchanged a trial or a record with any worker,
// and what each slot holds (slot k: worker rank k % workers + 1; a rank runs
// its trials in the order they were sent, so its oldest slot finishes first).
#define QUEUE_DEPTH 8  // slots per worker rank: one running, the rest queued short trials
typedef struct {
    double last_event;
    int workers;
    char (*id)[SWEEP_ID_LEN + 1];  // (slots) the trial each slot holds
    long *seq;                      // (slots) when it was sent; 0: empty
    long sent;
} mpi_exec;

static int mpi_start(executor *ex, int slot, const char *id, const char *settings, int budget,
                     int attempts, petal_err *err) {
    (void)err;
    mpi_exec *me = ex->ctx;
    me->last_event = petal_now();
    snprintf(me->id[slot], sizeof me->id[slot], "%s", id);
    me->seq[slot] = ++me->sent;
    size_t n = strlen(id) + strlen(settings) + 64;
    char *msg = petal_malloc(n);
    int len = snprintf(msg, n, "%d %d %s\n%s", budget, attempts, id, settings);
    MPI_Send(msg, len + 1, MPI_CHAR, slot % me->workers + 1, TAG_TRIAL, MPI_COMM_WORLD);
    free(msg);
    return PETAL_OK;
}

// The slot of a record from rank `source` about trial id: the slot holding
// that trial on that rank, else (a record that could not be read) the rank's oldest.
static int slot_of(mpi_exec *me, int slots, int source, const char *id) {
    int oldest = -1;
    for (int k = source - 1; k < slots; k += me->workers) {
        if (!me->seq[k]) continue;
        if (id[0] && !strcmp(me->id[k], id)) return k;
        if (oldest < 0 || me->seq[k] < me->seq[oldest]) oldest = k;
    }
    return oldest;
}

static int mpi_wait(executor *ex, results_record *rec, double wait) {
    mpi_exec *me = ex->ctx;
    double until = petal_now() + wait;
    long us = 100;  // a record that is already on its way costs ~0.1 ms, not 1
    for (;;) {
        int flag = 0;
        MPI_Status s;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_RECORD, MPI_COMM_WORLD, &flag, &s);
        if (flag) {
            int len;
            MPI_Get_count(&s, MPI_BYTE, &len);
            char *buf = petal_malloc((size_t)(len ? len : 1));
            MPI_Recv(buf, len, MPI_BYTE, s.MPI_SOURCE, TAG_RECORD, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            petal_err err;
            if (results_record_unpack(rec, buf, (size_t)len, &err)) {  // cannot happen between ranks of one build
                memset(rec, 0, sizeof *rec);
                rec->status = RS_FAILED;
                snprintf(rec->error, sizeof rec->error, "rank %d sent %.900s", s.MPI_SOURCE, err.msg);
            }
            free(buf);
            me->last_event = petal_now();
            int k = slot_of(me, ex->slots, s.MPI_SOURCE, rec->id);
            if (k < 0) {  // nothing of that rank's in flight: cannot happen
                results_record_free(rec);
                continue;
            }
            me->seq[k] = 0;
            return k;
        }
        double now = petal_now();
        if (now >= until) return -1;
        // The step between looks is capped at 1% of the time since the last
        // trial or record (2 ms .. 50 ms): a record then waits at most ~1% of
        // the trials' length. A fixed 50 ms cap let both sides' back-offs grow
        // together with short trials (a worker waiting for its next trial,
        // rank 0 for the record): 160 ms a trial with one worker rank.
        long cap = (long)(1e4 * (now - me->last_event));
        coord_backoff(&us, cap < 2000 ? 2000 : cap > 50000 ? 50000 : cap);
    }
}

// Stops the trial slot holds: the rank stops it if it runs, hands it back
// unstarted if it is queued.
static void mpi_stop(executor *ex, int slot) {
    mpi_exec *me = ex->ctx;
    MPI_Send(me->id[slot], SWEEP_ID_LEN + 1, MPI_CHAR, slot % me->workers + 1, TAG_STOP, MPI_COMM_WORLD);
}

int coord_mpi_main(const sweep_spec *spec, const coord_opts *co, const worker_opts *wo, petal_err *err) {
    MPI_Init(NULL, NULL);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    // Threads per worker rank: --threads, else SLURM_CPUS_PER_TASK, else the
    // node's CPUs shared by the worker ranks on the node (rank 0 only coordinates).
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    int local, has0 = rank == 0, node_has0;
    MPI_Comm_size(node, &local);
    MPI_Allreduce(&has0, &node_has0, 1, MPI_INT, MPI_MAX, node);
    MPI_Comm_free(&node);
    worker_opts w = *wo;
    if (!w.threads) {
        const char *slurm = getenv("SLURM_CPUS_PER_TASK");
        long cpus = slurm && atoi(slurm) > 0 ? atoi(slurm) : 0;
        if (!cpus) {
            long online = sysconf(_SC_NPROCESSORS_ONLN);
            int workers = local - node_has0;
            cpus = workers > 0 ? online / workers : online;
        }
        w.threads = cpus > 0 ? (int)cpus : 1;
    }
    int st = PETAL_OK;
    if (rank == 0) {
        executor ex;
        local_exec le;
        mpi_exec me = {petal_now(), size - 1, NULL, NULL, 0};
        if (size == 1) {
            local_executor(&ex, &le, &w);
        } else {
            int slots = (size - 1) * QUEUE_DEPTH;
            me.id = petal_calloc((size_t)slots, sizeof *me.id);
            me.seq = petal_calloc((size_t)slots, sizeof *me.seq);
            ex = (executor){slots, size - 1, mpi_start, mpi_wait, mpi_stop, &me};
        }
        if (co->out) fprintf(co->out, "sweep over MPI: %d worker rank(s), %d thread(s) per trial\n",
                             size == 1 ? 1 : size - 1, w.threads);
        st = coord_run(spec, &ex, co, err);
        if (size == 1) local_executor_close(&le);
        free(me.id), free(me.seq);
        for (int r = 1; r < size; r++) MPI_Send(&st, 1, MPI_INT, r, TAG_QUIT, MPI_COMM_WORLD);
    } else {
        worker_rank_loop(&w, co->stop);
    }
    MPI_Finalize();
    return rank == 0 ? st : PETAL_OK;
}
