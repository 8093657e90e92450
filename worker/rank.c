// ==== A worker rank's loop =======================================================
#include "worker/rank.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/mpi.h"

static char *recv_text(MPI_Status *s) {
    int len;
    MPI_Get_count(s, MPI_CHAR, &len);
    char *buf = petal_malloc((size_t)len + 1);
    MPI_Recv(buf, len, MPI_CHAR, 0, s->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    buf[len] = 0;
    return buf;
}

// Trials asked to stop before this rank started them (a stop can overtake
// the trial it names: the rank looks for stops alone while a trial runs).
typedef struct {
    char id[64][SWEEP_ID_LEN + 1];
    int n;
} cancelled;

static void cancel(cancelled *c, const char *id) {
    for (int k = 0; k < c->n; k++)
        if (!strcmp(c->id[k], id)) return;
    if (c->n < 64) snprintf(c->id[c->n++], sizeof c->id[0], "%s", id);
}

// True (and forgets it) when id was asked to stop.
static int take_cancel(cancelled *c, const char *id) {
    for (int k = 0; k < c->n; k++)
        if (!strcmp(c->id[k], id)) {
            c->id[k][0] = 0;
            memmove(c->id[k], c->id[--c->n], sizeof c->id[0]);
            return 1;
        }
    return 0;
}

static void recv_stop(char *id) {
    char buf[SWEEP_ID_LEN + 1];
    MPI_Recv(buf, SWEEP_ID_LEN + 1, MPI_CHAR, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    buf[SWEEP_ID_LEN] = 0;
    memcpy(id, buf, sizeof buf);
}

// Runs one trial message ("budget attempts id\nsettings") to its record, or
// hands it back unstarted (status pending) when a stop came first.
static void run_trial(worker_child *c, cancelled *cx, char *msg, const worker_opts *o,
                      volatile sig_atomic_t *stop) {
    int budget = 0, attempts = 0;
    char id[SWEEP_ID_LEN + 1] = "";
    char *settings = strchr(msg, '\n');
    results_record rec;
    petal_err err;
    int st = PETAL_EFAIL, parsed = settings && sscanf(msg, "%d %d %16s", &budget, &attempts, id) == 3;
    if (parsed && (take_cancel(cx, id) || (stop && *stop))) {
        memset(&rec, 0, sizeof rec);
        snprintf(rec.id, sizeof rec.id, "%s", id);
        rec.status = RS_PENDING;
    } else {
        if (parsed) st = worker_start(c, id, settings + 1, budget, attempts, o, &err);
        if (st) {  // could not even start it: a failed record says why
            memset(&rec, 0, sizeof rec);
            snprintf(rec.id, sizeof rec.id, "%s", id);
            rec.status = RS_FAILED;
            rec.retryable = 1;
            snprintf(rec.error, sizeof rec.error, "worker could not start the trial: %.900s",
                     settings ? err.msg : "malformed message");
            results_record_stamp(&rec);
        } else {
            while (!worker_poll(c, &rec, 0.1, o)) {
                int flag = 0;
                MPI_Status s;
                MPI_Iprobe(0, TAG_STOP, MPI_COMM_WORLD, &flag, &s);
                if (flag) {
                    char sid[SWEEP_ID_LEN + 1];
                    recv_stop(sid);
                    if (!strcmp(sid, id)) worker_stop(c);
                    else cancel(cx, sid);  // a trial queued behind this one
                }
                if (stop && *stop) worker_stop(c);
            }
        }
    }
    char *buf;
    size_t len;
    results_record_pack(&buf, &len, &rec);
    MPI_Send(buf, (int)len, MPI_BYTE, 0, TAG_RECORD, MPI_COMM_WORLD);
    free(buf);
    results_record_free(&rec);
}

void worker_rank_loop(const worker_opts *o, volatile sig_atomic_t *stop) {
    long us = 1000;
    worker_child c;  // this rank's runner, kept from trial to trial
    worker_init(&c);
    cancelled cx = {0};
    for (;;) {
        int flag = 0;
        MPI_Status s;
        MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &s);
        if (!flag) {
            coord_backoff(&us, 50000);  // idle: the next trial follows a record in ~ms
            continue;
        }
        us = 100;  // the next trial usually follows at once
        if (s.MPI_TAG == TAG_QUIT) {
            int st;
            MPI_Recv(&st, 1, MPI_INT, 0, TAG_QUIT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            worker_close(&c);
            return;
        }
        if (s.MPI_TAG == TAG_STOP) {  // for a trial that finished, or one still to come
            char sid[SWEEP_ID_LEN + 1];
            recv_stop(sid);
            cancel(&cx, sid);
            continue;
        }
        char *msg = recv_text(&s);
        if (s.MPI_TAG == TAG_TRIAL) run_trial(&c, &cx, msg, o, stop);
        free(msg);
    }
}
