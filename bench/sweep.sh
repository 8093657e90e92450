#!/usr/bin/env bash
# The sweep machinery, measured (issues 11 and 12). `make bench` runs it
# through bench/run.sh; alone: `bash bench/sweep.sh`. One line per measurement,
# each naming the set-up it ran with (ranks, workers, threads) and the 1-minute
# load average when it started (the machine may be shared: a load above the
# core count stretches every wall time).
#
#   bench sweep mode=inprocess trials=N overhead_ms_per_trial=X
#       N noop drill trials (done at once, no training) through `petal sweep` in
#       one process: wall time / N, store writes included (each trial sent to
#       the runner process, its folder and log made, its record written and
#       renamed, results.h5 rebuilt at intervals and at the end).
#       cpu_ms_per_trial is the CPU of petal and its runner (what the sweep
#       costs when the machine is not shared).
#   bench sweep mode=mpi ranks=R trials=N overhead_ms_per_trial=X
#       the same over `mpirun -n R` (rank 0 coordinates, R-1 worker ranks):
#       span / N, the span running from the first trial's start (its log.txt,
#       written once by a drill as it starts) to the last record stored (its
#       record.bin): Open MPI's start-up and shutdown (wall_s - span_s, a second
#       or more here) are not the sweep's per-trial cost.
#   bench sweep mode=mpi ranks=R efficiency=E coordinator_cpu=F
#       sleep drill trials of SWEEP_SLEEP_S seconds, SWEEP_SLEEP_PER trials per
#       worker, over 1, 2, 4 and 8 workers (oversubscribed: they only sleep):
#       E = ideal (per-worker trials x seconds) / span; F = rank 0's utime +
#       stime (/proc/<pid>/stat) over its lifetime / that lifetime (MPI_Init
#       included).
#   bench sweep mode=mpi ranks=3 study=demo trials_per_hour=T inprocess_trials_per_hour=U
#       the real demo study (sweeps/demo.yaml on `petal demo`'s data, prepared
#       or reused in SWEEP_DEMO_DATA) over mpirun -n 3 (2 workers, 1 thread
#       each) against one process (2 threads). Minutes: SWEEP_DEMO=0 skips it.
#   bench share ranks=R pss_mib=X private_pss_mib=Y
#       R worker ranks (mpirun -n R+1) each training the Pfeiffer adapter on
#       one ViT-B backbone file (synthetic features, 1 thread each): the summed
#       PSS (/proc/<pid>/smaps_rollup) of the trial child processes, peak while
#       all R run, through the node-wide image against private copies
#       (--backbone-cache off). bench/share.sh's method. The trials are sampled
#       for SWEEP_SHARE_SECONDS (default 120) once all R run, then stopped
#       (SIGUSR1 to mpirun: they checkpoint and exit). SWEEP_SHARE=0 skips it.
#
#   SWEEP_TRIALS=1000 SWEEP_RANKS=3 SWEEP_SLEEP_S=2 SWEEP_SLEEP_PER=4
#   SWEEP_WORKERS="1 2 4 8" SWEEP_DEMO=1 SWEEP_DEMO_DATA=demo-data
#   SWEEP_SHARE=1 SWEEP_SHARE_RANKS=4 SWEEP_SHARE_SIZE=base
#   SWEEP_DRILLS=0 skips the noop and sleep lines (only the demo and share lines)
set -euo pipefail
cd "$(dirname "$0")/.."
P=$PWD/petal
trials=${SWEEP_TRIALS:-1000}
ranks=${SWEEP_RANKS:-3}
sleep_s=${SWEEP_SLEEP_S:-2}
sleep_per=${SWEEP_SLEEP_PER:-4}
workers=${SWEEP_WORKERS:-1 2 4 8}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=(mpirun --oversubscribe --bind-to none)
work=$(mktemp -d /tmp/petal-sweep-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
load1() { cut -d' ' -f1 /proc/loadavg; }
clk=$(getconf CLK_TCK)

# spec <file> <drill> <n> [seconds]: n trials of a drill (seeds 1..n)
spec() {
  printf 'study: bench-%s\nbase: {drill: %s, drill.seconds: %s}\ngrid:\n  train.seed: [%s]\n' \
    "$2" "$2" "${4:-0}" "$(seq -s, 1 "$3")" >"$1"
}

# timed <out-var> <command...>: wall seconds of the command (its output in $work/log)
timed() {
  local var=$1 t0 t1; shift
  t0=$(now)
  "$@" >"$work/log" 2>&1 || { echo "bench sweep: failed: $*" >&2; tail -5 "$work/log" >&2; exit 1; }
  t1=$(now)
  printf -v "$var" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')"
}

if [ "${SWEEP_DRILLS:-1}" != 0 ]; then
# ---- in one process ----------------------------------------------------------------
spec "$work/noop.yaml" noop "$trials"
l=$(load1)
# /usr/bin/time: petal's own CPU plus its waited-for children (every trial)
t0=$(now)
/usr/bin/time -f '%U %S' -o "$work/cpu" "$P" sweep "$work/noop.yaml" --out "$work/run-in" --threads 1 \
  >"$work/log" 2>&1 || { echo "bench sweep: in-process sweep failed" >&2; tail -5 "$work/log" >&2; exit 1; }
t1=$(now)
read -r u s <"$work/cpu"
awk -v n="$trials" -v a="$t0" -v b="$t1" -v u="$u" -v s="$s" -v l="$l" 'BEGIN {
  printf "bench sweep mode=inprocess trials=%d overhead_ms_per_trial=%.3f threads=1 wall_s=%.2f cpu_ms_per_trial=%.3f load1=%s\n",
         n, (b - a) * 1000 / n, b - a, (u + s) * 1000 / n, l }'

# span <RUN>: seconds from the first trial's start (log.txt, which a drill writes
# once as it starts) to the last record stored (record.bin)
span() {
  local a b
  a=$(find "$1/trials" -name log.txt -printf '%T@\n' | sort -n | head -1)
  b=$(find "$1/trials" -name record.bin -printf '%T@\n' | sort -n | tail -1)
  awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b - a}'
}

# ---- over MPI: noop trials -----------------------------------------------------------
l=$(load1)
timed wall "${MPIRUN[@]}" -n "$ranks" "$P" sweep "$work/noop.yaml" --out "$work/run-mpi" --threads 1
sp=$(span "$work/run-mpi")
awk -v r="$ranks" -v n="$trials" -v w="$wall" -v sp="$sp" -v l="$l" 'BEGIN {
  printf "bench sweep mode=mpi ranks=%d trials=%d overhead_ms_per_trial=%.3f workers=%d threads=1 span_s=%.2f wall_s=%.2f load1=%s\n",
         r, n, sp * 1000 / n, r - 1, sp, w, l }'

# ---- over MPI: sleeping trials, 1..8 workers -------------------------------------------
# rank0 <mpirun pid>: samples rank 0's utime+stime until it exits; prints
# "<cpu seconds> <lifetime seconds>"
rank0() {
  local mp=$1 pid="" t0 t1 ticks=0 x
  while kill -0 "$mp" 2>/dev/null && [ -z "$pid" ]; do
    for c in $(pgrep -P "$mp" 2>/dev/null); do
      if tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=0; then pid=$c; fi
    done
    [ -n "$pid" ] || sleep 0.05
  done
  [ -n "$pid" ] || { echo "0 1"; return; }
  t0=$(now); t1=$t0
  while x=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null); do
    ticks=$x; t1=$(now); sleep 0.1
  done
  awk -v t="$ticks" -v c="$clk" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f %.3f\n", t / c, b - a}'
}

for w in $workers; do
  r=$((w + 1)); n=$((w * sleep_per))
  spec "$work/sleep$w.yaml" sleep "$n" "$sleep_s"
  l=$(load1)
  t0=$(now)
  "${MPIRUN[@]}" -n "$r" "$P" sweep "$work/sleep$w.yaml" --out "$work/run-s$w" --threads 1 >"$work/log" 2>&1 &
  mp=$!
  read -r cpu life < <(rank0 "$mp")
  wait "$mp" || { echo "bench sweep: sleep sweep with $w workers failed" >&2; tail -5 "$work/log" >&2; exit 1; }
  t1=$(now)
  sp=$(span "$work/run-s$w")
  awk -v r="$r" -v w="$w" -v n="$n" -v s="$sleep_s" -v p="$sleep_per" -v a="$t0" -v b="$t1" -v sp="$sp" \
      -v cpu="$cpu" -v life="$life" -v l="$l" 'BEGIN {
    ideal = p * s
    printf "bench sweep mode=mpi ranks=%d efficiency=%.3f coordinator_cpu=%.4f workers=%d threads=1 trials=%d trial_s=%s ideal_s=%.1f span_s=%.2f wall_s=%.2f load1=%s\n",
           r, ideal / sp, cpu / life, w, n, s, ideal, sp, b - a, l }'
done
fi

# ---- the demo study: MPI against one process -------------------------------------------
if [ "${SWEEP_DEMO:-1}" != 0 ]; then
  data=${SWEEP_DEMO_DATA:-demo-data}
  "$P" demo --data "$data" >"$work/demo-prep.log" 2>&1 ||
    { echo "bench sweep: petal demo (data) failed" >&2; tail -5 "$work/demo-prep.log" >&2; exit 1; }
  n=$(PETAL_DATA=$data "$P" sweep sweeps/demo.yaml --dry-run | sed -n 's/^\([0-9]*\) trials:.*/\1/p')
  l=$(load1)
  PETAL_DATA=$data timed mpi_s "${MPIRUN[@]}" -n 3 "$P" sweep sweeps/demo.yaml --out "$work/demo-mpi" --threads 1
  PETAL_DATA=$data timed in_s "$P" sweep sweeps/demo.yaml --out "$work/demo-in" --threads 2
  awk -v n="$n" -v m="$mpi_s" -v i="$in_s" -v l="$l" 'BEGIN {
    printf "bench sweep mode=mpi ranks=3 study=demo trials_per_hour=%.0f inprocess_trials_per_hour=%.0f trials=%d workers=2 threads=1 inprocess_threads=2 mpi_s=%.1f inprocess_s=%.1f speedup=%.2f load1=%s\n",
           n * 3600 / m, n * 3600 / i, n, m, i, i / m, l }'
fi

# ---- one backbone per node, over worker ranks --------------------------------------------
if [ "${SWEEP_SHARE:-1}" != 0 ]; then
  sr=${SWEEP_SHARE_RANKS:-4}
  size=${SWEEP_SHARE_SIZE:-base}
  "$P" model init --size "$size" --frames 100 --out "$work/backbone.h5" >/dev/null
  cat >"$work/share.yaml" <<EOF
study: bench-share
base:
  dataset: {layout: synthetic, shots: 2}
  features: {frames: 100, mel_bins: 128}
  model: {backbone: "$work/backbone.h5"}
  method: adapter_pfeiffer
  train: {epochs: 1, batch: 8}
grid:
  train.seed: [$(seq -s, 1 "$sr")]
EOF
  window=${SWEEP_SHARE_SECONDS:-120}
  # run <cache>: the peak summed PSS (kB) of the trial children while all sr run
  run_share() {
    local cache=$1 out=$2 mp peak=0 sum alive pid kb seen=0 since=0 stopped=0
    "${MPIRUN[@]}" -n $((sr + 1)) "$P" sweep "$work/share.yaml" --out "$out" --threads 1 \
      --backbone-cache "$cache" >"$work/share.log" 2>&1 &
    mp=$!
    while kill -0 "$mp" 2>/dev/null; do
      if [ "$seen" = 1 ] && [ "$stopped" = 0 ] && [ "$(date +%s)" -ge $((since + window)) ]; then
        kill -USR1 "$mp"; stopped=$(date +%s)  # the trials checkpoint and exit (75)
      fi
      if [ "$stopped" != 0 ] && [ "$(date +%s)" -ge $((stopped + 120)) ]; then kill -TERM "$mp"; fi
      sum=0; alive=0
      # trial children: petal processes whose parent is a petal worker rank
      for rk in $(pgrep -P "$mp" 2>/dev/null); do
        for pid in $(pgrep -P "$rk" 2>/dev/null); do
          kb=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
          [ -n "$kb" ] && { sum=$((sum + kb)); alive=$((alive + 1)); }
        done
      done
      if [ "$alive" -eq "$sr" ] && [ "$stopped" = 0 ]; then
        [ "$seen" = 1 ] || since=$(date +%s)
        seen=1; [ "$sum" -gt "$peak" ] && peak=$sum
      fi
      sleep 0.2
    done
    local rc=0
    wait "$mp" || rc=$?
    [ "$rc" = 0 ] || [ "$stopped" != 0 ] || { echo "bench share: sweep failed ($rc)" >&2; tail -5 "$work/share.log" >&2; exit 1; }
    [ "$seen" = 1 ] || { echo "bench share: never saw $sr trials at once" >&2; exit 1; }
    echo "$peak"
  }
  l=$(load1)
  shared_kb=$(run_share "$work/images" "$work/share-on")
  private_kb=$(run_share off "$work/share-off")
  awk -v r="$sr" -v s="$shared_kb" -v p="$private_kb" -v z="$size" -v w="$window" -v l="$l" 'BEGIN {
    printf "bench share ranks=%d pss_mib=%.1f private_pss_mib=%.1f ratio=%.2f mpi_ranks=%d threads=1 method=adapter_pfeiffer size=%s window_s=%s load1=%s\n",
           r, s / 1024, p / 1024, s / p, r + 1, z, w, l }'
fi
