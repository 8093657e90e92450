#!/usr/bin/env bash
# Search strategies against the full grid (issue 16): best valid accuracy found
# and training epochs spent by the grid, random search at ASHA's budget and ASHA
# (and the median rule). Studies: 81 scripted curves (drill: curve, crossing
# curves q (1 - e^(-epoch/tau))), 30 real tiny trials on synthetic data; with
# BENCH_ASHA_DEMO=1 also the demo study
# sweeps/demo.yaml (needs PETAL_DATA with target/ and backbone.h5 from petal demo
# or make demo; the grid took 5 min on the quiet 2-core machine, 16 beside other jobs, each early-stopped
# sweep 1-5 min): ASHA with min_epochs 2 (the setting fixed before the measurement),
# ASHA with the issue's min_epochs 1, and the median rule. Prints `asha study= ...`
# lines. A second run on the same BENCH_ASHA_DIR reuses every finished sweep.
cd "$(dirname "$0")/.."
P=$PWD/petal
PY=/usr/bin/python3
W=${BENCH_ASHA_DIR:-$(mktemp -d /tmp/petal_bench_asha_XXXXXX)}
mkdir -p "$W"
seeds=$(seq -s, 1 81)
for kind in grid asha median; do
  {
    echo "study: curves"
    echo "base: {drill: curve, drill.seconds: 0, train.epochs: 27}"
    echo "grid: {train.seed: [$seeds]}"
    [ $kind = grid ] || echo "early_stop: {kind: $kind, metric: valid_acc, min_epochs: 1, eta: 3}"
  } >"$W/curves_$kind.yaml"
  $P sweep "$W/curves_$kind.yaml" --out "$W/curves_$kind" >/dev/null || exit 1
done
$PY bench/asha_compare.py "$W/curves_grid" "$W/curves_asha" curves:asha
$PY bench/asha_compare.py "$W/curves_grid" "$W/curves_median" curves:median
# a real tiny study on petal's built-in synthetic data (a few minutes)
for kind in grid asha; do
  {
    echo "study: synthetic"
    echo "base: {train: {epochs: 9, batch: 8}}"
    echo "grid:"
    echo "  train.seed: [1, 2, 3]"
    echo "  method: [linear, bitfit, {method: lora, lora.rank: [2, 4, 8]}, {method: adapter_pfeiffer, adapter.dim: [4, 8, 16]}, {method: prompt_deep, prompt.tokens: [2, 8]}]"
    [ $kind = grid ] || echo "early_stop: {kind: asha, metric: valid_acc, min_epochs: 1, eta: 3}"
  } >"$W/synthetic_$kind.yaml"
  $P sweep "$W/synthetic_$kind.yaml" --out "$W/synthetic_$kind" --threads 1 >/dev/null || exit 1
done
$PY bench/asha_compare.py "$W/synthetic_grid" "$W/synthetic_asha" synthetic:asha
if [ "${BENCH_ASHA_DEMO:-0}" = 1 ]; then
  export PETAL_DATA=${PETAL_DATA:-demo-data}
  cp sweeps/demo.yaml "$W/demo_grid.yaml"
  for es in "asha 2 asha" "asha 1 asha_min1" "median 2 median"; do
    set -- $es
    { cat sweeps/demo.yaml; echo "early_stop: {kind: $1, metric: valid_acc, min_epochs: $2, eta: 3}"; } >"$W/demo_$3.yaml"
  done
  for kind in grid asha asha_min1 median; do
    $P sweep "$W/demo_$kind.yaml" --out "$W/demo_$kind" >>"$W/demo_$kind.log" || exit 1
  done
  for kind in asha asha_min1 median; do
    $PY bench/asha_compare.py "$W/demo_grid" "$W/demo_$kind" demo:$kind
  done
fi
