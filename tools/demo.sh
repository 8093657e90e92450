#!/usr/bin/env bash
# make demo: the demo study end to end on this machine's cores.
#   1. petal demo: two synthetic sound corpora and a tiny pretrained backbone (kept)
#   2. the study sweeps/demo.yaml over MPI: rank 0 coordinates, one worker rank per core
#   3. the comparison table (Markdown here) and the HTML report and figure next to results.h5
# PETAL_DATA (default demo-data) says where; a second run reuses everything done.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${PETAL_DATA:-demo-data}
export PETAL_DATA=$DATA
start=$(date +%s)
./petal demo --data "$DATA" || exit $?
if [ "$(id -u)" = 0 ]; then  # Open MPI refuses root unless told
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
workers=$(nproc)
echo "demo: the study over MPI: mpirun -n $((workers + 1)) (1 coordinator + $workers workers, 1 thread each)"
mpirun -n $((workers + 1)) --oversubscribe --bind-to none \
  ./petal sweep sweeps/demo.yaml --out "$DATA/run" --threads 1
rc=$?
[ $rc = 0 ] || [ $rc = 1 ] || exit $rc   # 1: some trial failed, the store is complete
if ./petal report --help >/dev/null 2>&1; then
  ./petal report "$DATA/run" --rows label,model.backbone --cols dataset.shots || rc=1
  ./petal report "$DATA/run" --rows label,model.backbone --cols dataset.shots \
    --format html --out "$DATA/run/report.html" --plot "$DATA/run/fewshot.svg" || rc=1
  ./petal report "$DATA/run" --table fewshot --rows label,model.backbone --plot "$DATA/run/fewshot.png" >/dev/null || rc=1
  echo "demo: $DATA/run/report.html, $DATA/run/fewshot.png"
fi
echo "demo: $(( $(date +%s) - start )) s in all"
exit $rc
