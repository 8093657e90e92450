#!/usr/bin/env bash
# Sweeps end to end (tiny synthetic trials): spec errors with file:line:column,
# stable ids, a real sweep equal to `petal train`, MPI ranks equal to one
# process, crashing and hanging trials recorded while the others finish,
# kill -9 at random instants then resume to the same store (opened with h5py
# after every kill), SIGUSR1 -> checkpoint, exit 75, resume; one writer per RUN;
# `petal results check` rebuilds a lost results.h5; the documented pandas line.
source "$(dirname "$0")/sweep_lib.sh" sweep

# ---- spec errors: exit 2 and the place -------------------------------------------
spec_err unknown "unknown.yaml:3:3: unknown setting 'lora.rnak' (did you mean lora.rank?)" \
  $'grid:\n  method: [lora]\n  lora.rnak: [4]'
spec_err type "type.yaml:2:18: train.epochs expects an integer in [1, 100000], got 'x'" \
  $'grid:\n  train.epochs: [x]'
spec_err range "range.yaml:2:19: dataset.shots expects an integer in [0, 1048576], got '-4'" \
  $'grid:\n  dataset.shots: [-4]'
spec_err empty "empty.yaml:2:15: train.seed: empty axis" $'grid:\n  train.seed: []'
spec_err family "family.yaml:3:46: lora.rank: the method (adapter_pfeiffer) has no LoRA" \
  $'grid:\n  method:\n    - {method: adapter_pfeiffer, lora.rank: [4, 8]}'
spec_err twice "comes out twice" $'grid:\n  method: [lora]\ninclude:\n  - {method: lora}'
spec_err var "var.yaml:2:17: \${PETAL_TEST_UNSET} is not set" $'base:\n  dataset.root: ${PETAL_TEST_UNSET}/x'
spec_err dupkey "dupkey.yaml:3:11: train.epochs is given twice" $'base:\n  train.epochs: 2\n  train: {epochs: 3}'
spec_err section "unknown section 'grd' (did you mean grid?)" $'grd:\n  train.seed: [1]'
spec_err sample "sample.yaml:2:3: lora.rank is a range: add \`sample: {n: N}\`" \
  $'grid:\n  lora.rank: {log_int: [2, 16]}\n  method: [lora]'
spec_err syntax "syntax.yaml:1:25: did not find expected ','" $'grid: {train.seed: [1, 2}\n'
spec_err rank "lora.rank 100 is larger than the hidden size 64" $'grid:\n  method: [{method: lora, lora.rank: [100]}]'
spec_err nothing "every trial is excluded" $'grid:\n  train.seed: [1]\nexclude:\n  - {train.seed: 1}'
spec_err notyaml "a sweep spec is a mapping" '- just a list'

# ---- ids: stable under added axis values and reordered axes ------------------------
cat >"$T/ids1.yaml" <<'EOF'
grid:
  train.seed: [1, 2]
  method: [linear, {method: lora, lora.rank: [2, 4]}]
EOF
cat >"$T/ids2.yaml" <<'EOF'
base: {}
grid:
  method: [{method: lora, lora.rank: [4, 8, 2]}, linear]
  train.seed: [3, 2, 1]
EOF
$P sweep "$T/ids1.yaml" --dry-run | grep -E '^[0-9a-f]{16} ' | cut -d' ' -f1 | sort >"$T/ids1"
$P sweep "$T/ids2.yaml" --dry-run | grep -E '^[0-9a-f]{16} ' | cut -d' ' -f1 | sort >"$T/ids2"
check '[ $(wc -l <"$T/ids1") = 6 ] && [ $(wc -l <"$T/ids2") = 12 ] && [ -z "$(comm -23 "$T/ids1" "$T/ids2")" ]' \
  "ids survive added values and reordered axes: $(comm -23 "$T/ids1" "$T/ids2" | tr '\n' ' ')"
PETAL_TEST_ROOT=/x $P sweep /dev/stdin --dry-run >"$T/out" 2>&1 <<'EOF'
base: {train.epochs: 2}
grid:
  features.cache: ["${PETAL_TEST_ROOT}/cache"]
EOF
check 'grep -q "^1 trials" "$T/out"' "\${VAR} expands: $(cat "$T/out")"

# ---- a real sweep in one process, equal to petal train ------------------------------
cat >"$T/s.yaml" <<'EOF'
study: smoke
base:
  train: {epochs: 3, batch: 8}
grid:
  train.seed: [1, 2]
  method:
    - linear
    - {method: lora, lora.rank: [2, 4]}
    - {method: adapter_pfeiffer, adapter.dim: 8}
exclude:
  - {method: linear, train.seed: 2}
include:
  - {method: full, train.seed: 1}
EOF
$P sweep "$T/s.yaml" --out "$T/ref" --threads 1 >"$T/out" 2>"$T/err"; rc=$?
check '[ $rc = 0 ] && grep -q "smoke: 8 done, 0 failed" "$T/out"' "in-process sweep: rc $rc $(tail -3 "$T/out") $(cat "$T/err")"
$P train --method lora --set lora.rank=4 --epochs 3 --batch 8 --seed 2 --threads 1 2>/dev/null | grep '^result' >"$T/train"
id=$($P sweep "$T/s.yaml" --dry-run | awk '/lora.rank=4/ && /train.seed=2/ {print $1}')
acc=$($PY -c "
import h5py; f = h5py.File('$T/ref/results.h5'); t = f['/trials'][()]
print('%.4f' % [r['test_acc'] for r in t if r['id'].decode() == '$id'][0])")
check 'grep -q "test_acc=$acc " "$T/train"' "sweep trial = petal train: $acc vs $(cat "$T/train")"
$P sweep "$T/s.yaml" --out "$T/ref" --threads 1 >"$T/out" 2>&1
check 'grep -q "8 done before, 0 to run" "$T/out"' "a rerun skips finished trials: $(head -1 "$T/out")"
# the documented pandas line, and predict from a trial's checkpoint through the store
$PY -c "import h5py, pandas; df = pandas.DataFrame(h5py.File('$T/ref/results.h5')['/trials'][()]); \
assert len(df) == 8 and (df.status == b'done').all() and 'lora.rank' in df and df['test_acc'].notna().all(); \
f = h5py.File('$T/ref/results.h5'); assert 'best' in f['/checkpoints/$id/fold1']" 2>"$T/err"
py=$?  # saved first: the message's $(...) resets $? before check runs
check '[ $py = 0 ]' "pandas reads /trials, checkpoints are linked: $(tail -2 "$T/err")"

# ---- MPI: 3 and 5 ranks give the in-process store ---------------------------------
same_store() { # a b -> ids, status, test_acc, best_valid_acc bit for bit
  $PY - "$1" "$2" <<'EOF'
import sys, h5py
def rows(p):
    t = h5py.File(p + "/results.h5")["/trials"][()]
    return {r["id"]: (r["status"], r["test_acc"].tobytes(), r["best_valid_acc"].tobytes(), r["best_epoch"]) for r in t}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
sys.exit(0 if a == b and len(a) > 0 else 1)
EOF
}
for n in 3 5; do
  $MPIRUN -n $n $P sweep "$T/s.yaml" --out "$T/mpi$n" --threads 1 >"$T/out" 2>"$T/err"; rc=$?
  check '[ $rc = 0 ] && same_store "$T/ref" "$T/mpi$n"' "mpirun -n $n equals one process (rc $rc): $(tail -2 "$T/out") $(tail -3 "$T/err")"
  check '[ $(grep -c "^== trial" "$T"/mpi$n/trials/*/log.txt | awk -F: "{s+=\$2} END {print s}") = 8 ]' \
    "mpirun -n $n ran every trial exactly once"
done

# ---- crashing and hanging trials --------------------------------------------------
cat >"$T/crash.yaml" <<'EOF'
base: {drill: noop}
grid:
  train.seed: [1, 2, 3]
include:
  - {drill: segv}
  - {drill: sleep, drill.seconds: 30}
EOF
$P sweep "$T/crash.yaml" --out "$T/crash" --trial-timeout 2 --max-attempts 2 >"$T/out" 2>"$T/err"; rc=$?
$P results ls "$T/crash" --status failed >"$T/failed"
check '[ $rc = 1 ] && grep -q "signal 11 (Segmentation fault)" "$T/failed" && grep -q "timed out after 2 s" "$T/failed"' \
  "crash and timeout recorded (rc $rc): $(cat "$T/failed")"
check '[ "$($P results ls "$T/crash" --status done | grep -c " done ")" = 3 ] && grep -q " 2 signal 11\| 2 crashed" "$T/failed"' \
  "the other trials finish; the crash was retried once: $(cat "$T/failed")"
# trials share a runner process until one kills it: the crash and the timeout
# each cost the runner, the three noop trials run in at most three runners
pids=$(grep -h "^== trial" "$T"/crash/trials/*/log.txt | sed 's/.*(pid \([0-9]*\))/\1/' | sort -u | wc -l)
runs=$(grep -h "^== trial" "$T"/crash/trials/*/log.txt | wc -l)
check '[ "$runs" = 7 ] && [ "$pids" -ge 3 ] && [ "$pids" -lt 7 ]' \
  "runners reused between trials, replaced after a crash or timeout ($runs runs in $pids processes)"
check '! pgrep -f "petal sweep $T/crash.yaml" >/dev/null' "no runner outlives its sweep"
printf 'study: orphan\nbase: {drill: sleep, drill.seconds: 60}\ngrid: {train.seed: [1]}\n' >"$T/orphan.yaml"
$P sweep "$T/orphan.yaml" --out "$T/orphan" >/dev/null 2>&1 &
for _ in $(seq 100); do grep -q "^== trial" "$T"/orphan/trials/*/log.txt 2>/dev/null && break; sleep 0.1; done
running=$(pgrep -f "petal sweep $T/orphan.yaml" | wc -l)  # the sweep and its runner
kill -9 $!; wait $! 2>/dev/null
for _ in $(seq 50); do pgrep -f "petal sweep $T/orphan.yaml" >/dev/null || break; sleep 0.1; done
check '[ "$running" = 2 ] && ! pgrep -f "petal sweep $T/orphan.yaml" >/dev/null' \
  "kill -9 of a sweep takes its running trial with it ($running processes before)"
$MPIRUN -n 3 $P sweep "$T/crash.yaml" --out "$T/crashm" --trial-timeout 2 --max-attempts 1 >"$T/out" 2>"$T/err"; rc=$?
$P results ls "$T/crashm" >"$T/ls"
check '[ $rc = 1 ] && [ $(grep -c " done " "$T/ls") = 3 ] && grep -q "signal 11" "$T/ls" && grep -q "timed out" "$T/ls"' \
  "over MPI too (rc $rc): $(cat "$T/ls") $(tail -3 "$T/err")"

# ---- kill -9 at random instants, rerun until done: the same store -------------------
# Long enough that the kills below land mid-sweep (6 and 18 epochs finished within
# the third kill once the GEMMs moved to oneDNN, leaving too few kills).
cat >"$T/k.yaml" <<'EOF'
base:
  train: {epochs: 60, batch: 8}
grid:
  train.seed: [1, 2, 3]
  method: [{method: lora, lora.rank: 2}, {method: adapter_pfeiffer, adapter.dim: 4}]
EOF
$P sweep "$T/k.yaml" --out "$T/kref" --threads 1 >/dev/null 2>&1
kills=0
for delay in 0.4 0.9 1.3 0.2 1.7; do
  setsid $P sweep "$T/k.yaml" --out "$T/krun" --threads 1 >/dev/null 2>&1 &
  pid=$!
  sleep $delay
  kill -9 -- -$pid 2>/dev/null && kills=$((kills + 1))
  wait $pid 2>/dev/null
  if [ -f "$T/krun/results.h5" ]; then
    $PY -c "import h5py; h5py.File('$T/krun/results.h5')['/trials'][()]" 2>/dev/null || bad "results.h5 unreadable after a kill at ${delay}s"
  fi
done
$P sweep "$T/k.yaml" --out "$T/krun" --threads 1 >"$T/out" 2>&1; rc=$?
check '[ $rc = 0 ] && [ $kills -ge 3 ] && same_store "$T/kref" "$T/krun"' \
  "$kills kills then a rerun equal an uninterrupted sweep (rc $rc): $(tail -2 "$T/out")"

# ---- SIGUSR1 to mpirun: checkpoint, exit 75, resume to the same store ---------------
$MPIRUN -n 3 $P sweep "$T/k.yaml" --out "$T/usr1" --threads 1 >"$T/out" 2>"$T/err" &
pid=$!
sleep 1.2
kill -USR1 $pid
wait $pid; rc=$?
check '[ $rc = 75 ]' "SIGUSR1 -> exit 75 (got $rc): $(tail -3 "$T/out") $(tail -3 "$T/err")"
check 'grep -q "stopped" "$T/out" || grep -q "0 left" "$T/out"' "in-flight trials checkpointed: $(tail -3 "$T/out")"
$MPIRUN -n 3 $P sweep "$T/k.yaml" --out "$T/usr1" --threads 1 >"$T/out" 2>"$T/err"; rc=$?
check '[ $rc = 0 ] && same_store "$T/kref" "$T/usr1"' "resumed after SIGUSR1 equals uninterrupted (rc $rc): $(tail -2 "$T/out")"

# ---- records of trials a spec no longer has stay on disk, counted ------------------
printf 'study: o\nbase: {drill: noop}\ngrid: {train.seed: [1, 2, 3]}\n' >"$T/o3.yaml"
printf 'study: o\nbase: {drill: noop}\ngrid: {train.seed: [1, 3]}\n' >"$T/o2.yaml"
$P sweep "$T/o3.yaml" --out "$T/orph" >/dev/null 2>&1 && $P sweep "$T/o2.yaml" --out "$T/orph" >/dev/null 2>&1
rm -f "$T/orph/results.h5"
$P results check "$T/orph" >"$T/out" 2>&1; rc=$?
check '[ $rc = 0 ] && grep -q "rebuilt from 2 trial records .*; 1 orphan record(s) kept" "$T/out"' \
  "a dropped trial's record is kept and counted (rc $rc): $(cat "$T/out")"

# ---- short trials over MPI wait in queue slots behind the running one; a stop
# hands the queued ones back unstarted (pending: no log, no record), a rerun runs them
printf 'study: queue\nbase: {drill: sleep, drill.seconds: 0.05}\ngrid: {train.seed: [%s]}\n' \
  "$(seq -s, 1 80)" >"$T/q.yaml"
$MPIRUN -n 3 $P sweep "$T/q.yaml" --out "$T/q" >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 200); do [ "$(find "$T/q/trials" -name record.bin 2>/dev/null | wc -l)" -ge 20 ] && break; sleep 0.05; done
kill -USR1 $pid
wait $pid; rc=$?
$P results ls "$T/q" >"$T/ls"
nlog=$(find "$T/q/trials" -name log.txt | wc -l)
npend=$(grep -c " pending " "$T/ls")
check '[ $rc = 75 ] && [ "$npend" -gt 0 ] && [ $((nlog + npend)) = 80 ]' \
  "SIGUSR1 with queued trials: exit 75, the never-started ones pending (rc $rc, $nlog started, $npend pending): $(tail -2 "$T/out") $(tail -2 "$T/err")"
$MPIRUN -n 3 $P sweep "$T/q.yaml" --out "$T/q" >"$T/out" 2>"$T/err"; rc=$?
check '[ $rc = 0 ] && [ "$($P results ls "$T/q" --status done | grep -c " done ")" = 80 ]' \
  "the rerun finishes every trial (rc $rc): $(tail -1 "$T/out")"

# ---- one writer per RUN; results check rebuilds -------------------------------------
cat >"$T/slow.yaml" <<'EOF'
base: {drill: sleep, drill.seconds: 3}
grid: {train.seed: [1]}
EOF
$P sweep "$T/slow.yaml" --out "$T/busy" >/dev/null 2>&1 &
pid=$!
sleep 0.5
$P sweep "$T/slow.yaml" --out "$T/busy" >"$T/out" 2>"$T/err"; rc=$?
check '[ $rc = 2 ] && grep -q "is in use by another sweep (pid $pid)" "$T/err"' "second writer refused: rc $rc $(cat "$T/err")"
wait $pid
rm "$T/ref/results.h5"
$P results check "$T/ref" >"$T/out" 2>&1; rc=$?
check '[ $rc = 0 ] && grep -q "rebuilt from 8 trial records" "$T/out" && same_store "$T/ref" "$T/mpi3"' \
  "results check rebuilds a lost results.h5: $(cat "$T/out")"
echo garbage >"$T/ref/results.h5"
$P results ls "$T/ref" >"$T/out" 2>"$T/err"; rc=$?
check '[ $rc = 2 ] && grep -q "results.h5: not an HDF5 file" "$T/err"' "a damaged store is named: $(cat "$T/err")"
$P results check "$T/ref" >/dev/null 2>&1 && $P results ls "$T/ref" >/dev/null 2>&1
check '[ $? = 0 ]' "and check repairs it"

# ---- a full disk: a clear error, nothing finished lost, go on once there is room ----
cat >"$T/many.yaml" <<'EOF2'
base: {drill: noop}
grid: {train.seed: {int: [1, 1000000]}}
sample: {n: 150, seed: 1}
EOF2
mkdir -p "$T/small"
if mount -t tmpfs -o size=400k tmpfs "$T/small" 2>/dev/null; then
  $P sweep "$T/many.yaml" --out "$T/small/run" >"$T/out" 2>"$T/err"; rc=$?
  done1=$(grep -c " done " "$T/out")
  check '[ $rc = 1 ] && grep -q "No space left on device" "$T/err" && grep -q "rerun the same command when there is room" "$T/err"' \
    "a full disk stops the sweep with a clear error (rc $rc): $(tail -2 "$T/err")"
  mount -o remount,size=20m "$T/small"
  $P sweep "$T/many.yaml" --out "$T/small/run" >"$T/out" 2>"$T/err"; rc=$?
  check '[ $rc = 0 ] && [ "$($P results ls "$T/small/run" --status done | grep -c " done ")" = 150 ] && [ $done1 -gt 0 ] && grep -q "$done1 done before\|[0-9]* done before" "$T/out"' \
    "with room again the sweep finishes, keeping the $done1 finished before (rc $rc): $(head -1 "$T/out") $(tail -1 "$T/err")"
  umount "$T/small"
else
  echo "SKIPPED: full-disk case (cannot mount a tmpfs here)"
fi

echo "sweep: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
