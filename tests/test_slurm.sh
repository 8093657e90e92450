#!/usr/bin/env bash
# `petal slurm` on a real SLURM that this test starts: munged, slurmctld and
# slurmd on this machine with a generated single-node slurm.conf (private
# ports, munge socket and state under a temporary folder), stopped again when
# the test ends, also on failure. Cases on one tiny spec of real training
# trials: a submitted MPI sweep completes (each trial once); USR1 mid-sweep
# (scancel --signal=USR1 --batch) checkpoints, requeues and resumes to the
# uninterrupted store; a job array merges into the same store; petal status.
# If SLURM cannot be installed or started this prints SKIPPED and exits 77
# (tests/run.sh counts it as skipped, never as passed).
cd "$(dirname "$0")/.."
P=$PWD/petal
PY=/usr/bin/python3
T=$(mktemp -d /tmp/petal_test_slurm_XXXXXX)
chmod 755 "$T"  # munged (its own user) needs to reach its socket folder
started=()      # pids this test started, in order
jobs_seen=()    # ids of our cluster's jobs
cleanup() {
  if [ ${#started[@]} -gt 1 ]; then  # our cluster's jobs only (SLURM_CONF is ours)
    jobs_seen+=($(squeue -h -o %A 2>/dev/null))
    [ ${#jobs_seen[@]} -gt 0 ] && scancel "${jobs_seen[@]}" 2>/dev/null
    for _ in $(seq 100); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do kill "${started[i]}" 2>/dev/null; done
  for p in "${started[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  # a job that was starting as the daemons stopped can outlive them: its steps
  # (slurmstepd: [JOB.x]) and its processes (their command lines name $T)
  for c in /proc/[0-9]*/cmdline; do
    p=${c#/proc/}; p=${p%/cmdline}
    [ "$p" = $$ ] && continue
    cmd=$({ tr '\0' ' ' <"$c"; } 2>/dev/null)
    id=${cmd#slurmstepd: [}; id=${id%%[._]*}
    if [[ "$cmd" == *"$T/"* ]] || { [[ "$cmd" == "slurmstepd: ["* ]] && [[ " ${jobs_seen[*]} " == *" $id "* ]]; }; then
      kill -9 "$p" 2>/dev/null
    fi
  done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM  # interrupted: still stop the daemons (through the EXIT trap)
skip() {
  echo "SKIPPED: test_slurm: $* (the SLURM cases did not run)" >&2
  for f in "$T"/log/*.log "$T"/log/*.out; do [ -s "$f" ] && { echo "--- $f"; tail -5 "$f"; } >&2; done
  echo "SKIPPED"
  exit 77
}
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# ---- SLURM: install what is missing, start the daemons ------------------------------
need=()
for c in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
  command -v "${c%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${c%%:*}" ] || need+=("${c#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || skip "missing ${need[*]} and not root to install them"
  echo "slurm test: installing ${need[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${need[@]}"; } >"$T/apt.log" 2>&1 || skip "apt-get install ${need[*]} failed: $(tail -2 "$T/apt.log")"
fi
[ "$(id -u)" = 0 ] || skip "the daemons run as root here (SlurmUser=root)"
export PATH=$PATH:/usr/sbin
mkdir -p "$T"/{state,spool,log,munge}
chown munge:munge "$T/munge" && chmod 755 "$T/munge" || skip "no munge user"
key=/etc/munge/munge.key
[ -f "$key" ] || { mungekey --create --keyfile="$T/munge.key" && chown munge "$T/munge.key" && key=$T/munge.key; } ||
  skip "no munge key"
host=$(hostname -s)
port=$((20000 + RANDOM % 20000))
cat >"$T/slurm.conf" <<EOF
ClusterName=petaltest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/socket,cred_expire=10
SlurmUser=root
SlurmdUser=root
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
KillWait=5
# a requeued job may start cred_expire (10 s) after its requeue; a scheduler
# pass every second starts it then, not at the next 30-60 s pass
SchedulerParameters=sched_interval=1,bf_interval=1
FirstJobId=$((1000 + RANDOM % 50000))
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$T/slurm.conf
t_start=$(date +%s)
# munged as its own user, without forking (setpriv execs: $! is munged itself)
setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F --key-file="$key" \
  --socket="$T/munge/socket" --pid-file="$T/munge/pid" --seed-file="$T/munge/seed" \
  --log-file="$T/log/munged.log" >"$T/log/munged.out" 2>&1 &
started+=($!)
for _ in $(seq 50); do munge -n -S "$T/munge/socket" 2>/dev/null | unmunge -S "$T/munge/socket" >/dev/null 2>&1 && break; sleep 0.1; done
munge -n -S "$T/munge/socket" | unmunge -S "$T/munge/socket" >/dev/null 2>&1 || skip "munged did not start"
slurmctld -D -i -f "$SLURM_CONF" >"$T/log/slurmctld.out" 2>&1 &
started+=($!)
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.1; done
scontrol ping 2>/dev/null | grep -q 'is UP' || skip "slurmctld did not come up"
slurmd -D -N "$host" -f "$SLURM_CONF" >"$T/log/slurmd.out" 2>&1 &
started+=($!)
for _ in $(seq 100); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.1; done
sinfo -h -o %T 2>/dev/null | grep -qx idle || skip "the node did not become idle: $(sinfo -h 2>&1)"
echo "slurm test: SLURM up in $(($(date +%s) - t_start)) s (port $port)"

# ---- helpers -------------------------------------------------------------------------
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Under make test SAN=1, LeakSanitizer cannot tell Open MPI's own allocations (in
# plugins unloaded before exit) from petal's: leak checks are off for the MPI
# ranks only, as tests/sweep_lib.sh does for mpirun. The jobs inherit this
# environment: srun gives the ranks it starts ASAN_OPTIONS (SRUN_EXPORT_ENV is
# srun's --export), and so does mpirun (mca_base_env_list) when a job falls back
# to it; the batch script's own petal processes keep their leak checks.
san_mpi="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export SRUN_EXPORT_ENV="ALL,$san_mpi" OMPI_MCA_mca_base_env_list="$san_mpi"
wait_job() { # job seconds -> 0 when it left the queue in time
  for _ in $(seq $(($2 * 5))); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  return 1
}
same_store() { # a b -> ids, status, test_acc, best_valid_acc, best_epoch, epochs bit for bit
  $PY - "$1" "$2" <<'EOF'
import sys, h5py
def rows(p):
    t = h5py.File(p + "/results.h5")["/trials"][()]
    return {r["id"]: (r["status"], r["test_acc"].tobytes(), r["best_valid_acc"].tobytes(), r["best_epoch"], r["epochs"]) for r in t}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
sys.exit(0 if a == b and len(a) > 0 else 1)
EOF
}
all_done_once() { # run n -> every trial done, each "done" line once over the job output
  $PY - "$1" "$2" <<'EOF'
import sys, glob, h5py, collections
run, n = sys.argv[1], int(sys.argv[2])
t = h5py.File(run + "/results.h5")["/trials"][()]
done = collections.Counter(l.split()[0] for f in glob.glob(run + "/slurm-*.out") for l in open(f) if " done test_acc=" in l)
ok = len(t) == n and all(r["status"] == b"done" for r in t) and all(done[r["id"].decode()] == 1 for r in t) and len(done) == n
if not ok: print(len(t), [r["status"] for r in t], dict(done))
sys.exit(0 if ok else 1)
EOF
}
cat >"$T/spec.yaml" <<'EOF'
study: slurm-test
base:
  train: {epochs: 20, batch: 8}
grid:
  train.seed: [1, 2, 3]
  method: [{method: lora, lora.rank: 2}, {method: adapter_pfeiffer, adapter.dim: 4}]
EOF
cd "$T"

# ---- 1. petal slurm --submit: MPI sweep, 3 ranks ---------------------------------------
t0=$(date +%s)
job=$($P slurm spec.yaml --out ref --ntasks-per-node 3 --cpus-per-task 1 --time 10 --submit 2>"$T/err"); rc=$?
jobs_seen+=("$job")
check '[ $rc = 0 ] && [[ "$job" =~ ^[0-9]+$ ]]' "submit prints the job id: rc $rc '$job' $(cat "$T/err")"
wait_job "$job" 150 || bad "job $job still queued after 150 s: $(squeue -h -j "$job")"
check 'all_done_once ref 6' "MPI job $job: every trial done, each once: $(tail -5 ref/slurm-$job.out)"
check 'grep -q "srun: 3 ranks" ref/slurm-$job.out && grep -q "sweep over MPI: 2 worker rank(s), 1 thread(s)" ref/slurm-$job.out' \
  "srun --mpi=pmix started 3 ranks, SLURM_CPUS_PER_TASK threads: $(head -4 ref/slurm-$job.out)"
$P status ref >"$T/status" 2>&1
check 'grep -q "6 trials: 6 done, 0 running, 0 failed, 0 left" "$T/status" && grep -q "slurm job $job: last event: - exit=0" "$T/status" && grep -q "not in the queue" "$T/status"' \
  "petal status after the job: $(cat "$T/status")"
echo "slurm test: MPI job $job in $(($(date +%s) - t0)) s"

# ---- 2. USR1 mid-sweep: checkpoint, requeue, resume to the same store -----------------
t0=$(date +%s)
job=$($P slurm spec.yaml --out usr1 --ntasks-per-node 3 --cpus-per-task 1 --submit 2>"$T/err")
jobs_seen+=("$job")
signalled=0
for _ in $(seq 300); do  # wait until a trial is done and others run
  $P status usr1 >"$T/status" 2>/dev/null
  if grep -q "[1-5] done, [1-9] running" "$T/status"; then
    scancel --signal=USR1 --batch "$job" && signalled=1
    break
  fi
  sleep 0.1
done
check '[ $signalled = 1 ] && grep -q "squeue: $job RUNNING" "$T/status"' \
  "USR1 sent while trials ran, status showed the running job: $(cat "$T/status")"
wait_job "$job" 180 || bad "job $job still queued after 180 s: $(squeue -h -j "$job")"
out=usr1/slurm-$job.out
check 'grep -q "SIGUSR1: asking petal to checkpoint" $out && grep -q "stopped .*checkpointed" $out && grep -q "petal exited 75" $out' \
  "USR1 -> trials checkpointed, exit 75: $(cat $out)"
check 'grep -q "requeueing job $job" $out && grep -q "^$job - start .* restart=1 " usr1/slurm-jobs && grep -q "petal exited 0" $out' \
  "requeued and resumed (restart 1): $(cat usr1/slurm-jobs)"
check 'all_done_once usr1 6' "after the requeue every trial is done, each exactly once: $(cat $out)"
check 'same_store ref usr1' "checkpoint + requeue + resume = the uninterrupted store"
echo "slurm test: USR1 + requeue job $job in $(($(date +%s) - t0)) s"

# ---- 3. a job array (throttled) merges into the MPI-mode store ---------------------
t0=$(date +%s)
$P slurm spec.yaml --out arr --array --throttle 2 --cpus-per-task 1 --script arr.sh 2>/dev/null
check 'grep -q "^#SBATCH --array=0-5%2$" arr.sh' "array directive: $(grep array= arr.sh)"
job=$($P slurm spec.yaml --out arr --array --throttle 2 --cpus-per-task 1 --submit 2>"$T/err")
[[ "$job" =~ ^[0-9]+$ ]] && jobs_seen+=($(seq "$job" $((job + 6))))
wait_job "$job" 180 || bad "array job $job still queued after 180 s: $(squeue -h -j "$job")"
check 'same_store ref arr' "array tasks merged = the MPI store: $(cat arr/slurm-jobs) $(cat arr/slurm-*.out | tail -5)"
check '[ $(grep -c " merged " arr/slurm-jobs) = 1 ] && [ $(grep -c " exit=0 " arr/slurm-jobs) = 6 ]' \
  "six tasks, one merge: $(cat arr/slurm-jobs)"
echo "slurm test: array job $job in $(($(date +%s) - t0)) s"

# ---- 4. hostile paths and values through sbatch's own parser --------------------------
t0=$(date +%s)
evil='x $(touch '"$T"'/pwned1) `touch '"$T"'/pwned2` "q" '"'"'s'"'"' ; #%j'
mkdir -p "$T/in $evil"
printf 'study: "e\x27vil $(touch %s/pwned3)"\nbase: {drill: noop}\ngrid: {train.seed: [1, 2]}\n' "$T" >"$T/in $evil/s.yaml"
job=$($P slurm "$T/in $evil/s.yaml" --out "$T/out $evil" --ntasks-per-node 1 \
  --sbatch '--comment=$(touch '"$T"'/pwned4) "x"' --submit 2>"$T/err"); rc=$?
wait_job "$job" 60 || bad "job $job still queued after 60 s"
check '[ $rc = 0 ] && grep -q "2 done, 0 failed" "$T/out $evil/slurm-$job.out" && [ -f "$T/out $evil/results.h5" ]' \
  "a job on hostile paths: output and store where asked: rc $rc $(cat "$T/err") $(ls "$T/out $evil" 2>&1)"
check '! ls "$T"/pwned* >/dev/null 2>&1' "nothing injected ran: $(ls "$T"/pwned* 2>&1)"
echo "slurm test: hostile-path job $job in $(($(date +%s) - t0)) s"

echo "slurm: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
