#!/usr/bin/env bash
# Kill-anywhere drill (make chaos; KILLS=20 by default): a small sweep is run in
# one process and over MPI and killed with SIGKILL at random instants, the
# whole launcher or a single trial process, and rerun until it completes.
# After every kill results.h5 must open with h5py; at the end each store must
# equal an uninterrupted run's (same trials, same metrics bit for bit).
# Exit 0 when everything held, 1 otherwise.
set -u
cd "$(dirname "$0")/.."
KILLS=${KILLS:-20}
P=./petal
PY=/usr/bin/python3
T=$(mktemp -d /tmp/petal_chaos_XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cat >"$T/spec.yaml" <<'EOF'
base:
  train: {epochs: 6, batch: 8}
grid:
  train.seed: [1, 2, 3]
  method: [{method: lora, lora.rank: 2}, {method: adapter_pfeiffer, adapter.dim: 4}, bitfit]
EOF
same_store() {
  $PY - "$1" "$2" <<'EOF'
import sys, h5py
def rows(p):
    t = h5py.File(p + "/results.h5")["/trials"][()]
    return {r["id"]: (r["status"], r["test_acc"].tobytes(), r["best_valid_acc"].tobytes(), r["best_epoch"]) for r in t}
sys.exit(0 if rows(sys.argv[1]) == rows(sys.argv[2]) else 1)
EOF
}
opens() { [ ! -f "$1/results.h5" ] || $PY -c "import h5py; h5py.File('$1/results.h5')['/trials'][()]" 2>/dev/null; }
$P sweep "$T/spec.yaml" --out "$T/ref" --threads 1 >/dev/null 2>&1 || { echo "chaos: the reference sweep failed"; exit 1; }
bad=0 kills=0
for mode in inprocess mpi; do
  run="$T/$mode"
  launch=($P sweep "$T/spec.yaml" --out "$run" --threads 1 --max-attempts 100)
  [ $mode = mpi ] && launch=(mpirun -n 3 --oversubscribe --bind-to none "${launch[@]}")
  for ((k = 0; k < KILLS / 2; k++)); do
    setsid "${launch[@]}" >/dev/null 2>&1 &
    pid=$!
    sleep "$($PY -c 'import random; print(round(random.uniform(0.2, 2.5), 2))')"
    if ((k % 3 == 2)); then  # one trial process (a grandchild of the launcher)
      victim=$(pgrep -f "petal sweep $T/spec.yaml" | grep -v "^$pid\$" | shuf -n 1)
      [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null && kills=$((kills + 1))
      wait $pid 2>/dev/null  # the sweep records the crash, retries, and finishes
    else
      kill -9 -- -$pid 2>/dev/null && kills=$((kills + 1))
      wait $pid 2>/dev/null
    fi
    opens "$run" || { echo "chaos: $mode: results.h5 unreadable after kill $k"; bad=1; }
  done
  for ((r = 0; r < 5; r++)); do "${launch[@]}" >/dev/null 2>&1 && break; done
  if same_store "$T/ref" "$run"; then
    echo "chaos: $mode: $((KILLS / 2)) kills, resumed to the uninterrupted store"
  else
    echo "chaos: $mode: the resumed store differs from the uninterrupted one"
    bad=1
  fi
done
echo "chaos: $kills SIGKILLs delivered, $([ $bad = 0 ] && echo nothing lost || echo FAILED)"
exit $bad
