#!/usr/bin/env bash
# Runs every libFuzzer target (build/fuzz/fuzz_*) for FUZZ_SECONDS seconds
# each, from a seed corpus of valid inputs (tests/fixtures, generated trial
# files) kept in build/fuzz/corpus/<target>; crashing inputs land in
# build/fuzz/crashes/<target>/. Prints one line per target:
#   fuzz <target>: <executions> runs in <seconds> s, <crashes> crashes
# and exits 1 when any target crashed.
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
C=build/fuzz/corpus
mkdir -p "$C"/{config,audio,json,safetensors,checkpoint,spec,record}
# specs: the ready-made studies (their ${VAR}s set) and the sections they lack
export PETAL_DATA=/data PETAL_BACKBONE=/data/backbone.h5
cp sweeps/*.yaml "$C/spec/"
printf 'grid:\n  train.seed: [1, 2]\n  train.lr: {log: [1e-4, 1e-2]}\n  method:\n    - {method: lora, lora.rank: {log_int: [2, 16]}}\n    - {method: adapter_pfeiffer, adapter.dim: {int: [4, 32]}}\nsample: {n: 6, seed: 2, kind: sobol}\nearly_stop: {kind: asha, metric: valid_acc, min_epochs: 1, eta: 3}\n' >"$C/spec/sampled.yaml"
printf 'study: x\nbase: {train: {epochs: 2}}\ngrid:\n  dataset.shots: [4, 8]\n  method: [linear, {method: lora, lora.rank: [2, 4]}]\nexclude:\n  - {method: linear, dataset.shots: [4, 8]}\ninclude:\n  - {method: full, dataset.shots: 8}\n' >"$C/spec/rules.yaml"
printf 'method: lora\nlora.rank: 8\ntrain: {epochs: 2, batch: 8}\n' >"$C/config/lora.yaml"
printf 'dataset: {layout: esc50, root: data, shots: 8, fold: all}\nfeatures: {frames: 100}\n' >"$C/config/esc.yaml"
printf 'method: prefix\nprefix.tokens: 4\nmodel.pool: cls\n' >"$C/config/prefix.yaml"
cp tests/fixtures/hf_tiny/clip.wav "$C/audio/" 2>/dev/null
sox -n -r 8000 -c 2 -b 16 "$C/audio/stereo8k.wav" synth 0.2 sine 300 2>/dev/null
sox -n -r 22050 -c 1 "$C/audio/tone.flac" synth 0.2 sine 500 2>/dev/null
cp tests/fixtures/hf_tiny/config.json "$C/json/"
printf '{"a": [1, 2.5e3, "x\\u00e9", {"b": null}], "c": true}' >"$C/json/mixed.json"
python3 - "$C/safetensors/small.safetensors" <<'PY'
import json, struct, sys
h = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
     "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]},
     "c": {"dtype": "BF16", "shape": [1], "data_offsets": [22, 24]},
     "__metadata__": {"format": "pt"}}
t = json.dumps(h).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(t)) + t + bytes(range(24)))
PY
printf '\x01\x05\x00\x00\x00\x00\x00\x00\x00' >"$C/checkpoint/pos"
printf '\x0a\x07\x00\x00\x00\x03\x00\x00\x00' >"$C/checkpoint/order"
failed=0
for bin in build/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=${bin##*/fuzz_}
  mkdir -p "build/fuzz/crashes/$name"
  log=build/fuzz/$name.log
  "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=3072 -max_len=65536 \
    -artifact_prefix="build/fuzz/crashes/$name/" -print_final_stats=1 "$C/$name" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(find "build/fuzz/crashes/$name" -type f | wc -l)
  echo "fuzz $name: ${runs:-0} runs in $secs s, $crashes crashes (exit $rc)"
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    grep -m 5 "ERROR\|SUMMARY\|runtime error" "$log" | sed 's/^/  /'
  fi
done
exit $failed
