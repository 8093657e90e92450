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

// Runs one trial message ("budget attempts id\nsettings") to its record.
static void run_trial(worker_child *c, char *msg, const worker_opts *o, volatile sig_atomic_t *stop) {
    int budget = 0, attempts = 0;
    char id[SWEEP_ID_LEN + 1] = "";
    char *settings = strchr(msg, '\n');
    results_record rec;
    petal_err err;
    int st = PETAL_EFAIL;
    if (settings && sscanf(msg, "%d %d %16s", &budget, &attempts, id) == 3)
        st = worker_start(c, id, settings + 1, budget, attempts, o, &err);
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
                int z;
                MPI_Recv(&z, 1, MPI_INT, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                worker_stop(c);
            }
            if (stop && *stop) worker_stop(c);
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
        if (s.MPI_TAG == TAG_STOP) {  // for a trial that already finished
            int z;
            MPI_Recv(&z, 1, MPI_INT, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            continue;
        }
        char *msg = recv_text(&s);
        if (s.MPI_TAG == TAG_TRIAL) run_trial(&c, msg, o, stop);
        free(msg);
    }
}
