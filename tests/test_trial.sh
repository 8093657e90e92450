#!/usr/bin/env bash
# `petal train` for real: generated corpora in the real layouts through fbank,
# the feature cache and few-shot subsets; YAML trial files and their errors;
# SIGTERM -> checkpoint -> exit 75 -> resume to the uninterrupted result;
# corrupt audio named in the error.
cd "$(dirname "$0")/.."
P=$PWD/petal
T=$(mktemp -d /tmp/petal_trial_XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

$P data synth --out "$T/data" --per-class 6 --classes 4 >/dev/null 2>&1
check '[ -f "$T/data/ESC-50/meta/esc50.csv" ]' "synth wrote the ESC-50 layout"

# ESC-50 layout, fold 2, SpecAugment on (the recipe's default for esc50).
$P train --data esc50 "$T/data" --fold 2 --set features.frames=128 --epochs 2 --batch 8 \
  --method adapter_pfeiffer --set adapter.dim=8 >"$T/out" 2>"$T/err"
rc=$?
check '[ $rc = 0 ] && grep -q "^result fold=2 " "$T/out"' "esc50 trial: $(tail -2 "$T/err")"
check 'grep -q "train=14 valid=5 test=5 classes=4" "$T/err"' "esc50 fold 2 split sizes: $(grep trial "$T/err")"
check 'grep -q "24 computed" "$T/err"' "features computed on the first run: $(cat "$T/err")"
$P train --data esc50 "$T/data" --fold 2 --set features.frames=128 --epochs 1 --batch 8 >"$T/out" 2>"$T/err"
rc=$?
check 'grep -q "0 computed, 24 from the cache" "$T/err"' "second trial reads the cache: $(cat "$T/err")"

# Speech Commands layout, 2 shots per class, every setting from a YAML file.
cat >"$T/gsc.yaml" <<YAML
dataset:
  layout: gsc
  root: $T/data
  shots: 2
method: lora
lora.rank: 4
train:
  epochs: 2
  batch: 4
  seed: 3
YAML
$P train "$T/gsc.yaml" >"$T/out" 2>"$T/err"
rc=$?
check '[ $rc = 0 ] && grep -q "method=lora train=8 " "$T/err"' "gsc 2-shot trial: $(cat "$T/err")"

# A trained trial predicts from its checkpoint: top-1 over the test list gives
# exactly the trial's test accuracy (same features, best state, eval mode).
# (the file's lora.rank would be refused for a method without LoRA: drop it)
sed '/lora.rank/d' "$T/gsc.yaml" >"$T/gsc_adapter.yaml"
$P train "$T/gsc_adapter.yaml" --set method=adapter_pfeiffer --set adapter.dim=8 --out "$T/gscrun" >"$T/out" 2>"$T/err"
rc=$?
want=$(sed -n 's/^result fold=1 .*test_acc=\([0-9.]*\) .*/\1/p' "$T/out")
files=$(sed "s|^|$T/data/speech_commands_v0.02/|" "$T/data/speech_commands_v0.02/testing_list.txt")
$P predict --checkpoint "$T/gscrun/fold1.h5" --top 1 $files >"$T/pred" 2>"$T/err"
prc=$?
got=$(awk -F'\t' '{ n++; split($1, p, "/"); if (p[length(p) - 1] == $3) k++ } END { printf "%.4f", k / n }' "$T/pred")
check '[ $rc = 0 ] && [ $prc = 0 ] && [ "$got" = "$want" ]' "predict --checkpoint accuracy $got = trial test_acc $want ($(cat "$T/err"))"

# Every fold of a protocol: per-fold results, then mean and std.
$P train --data esc50 "$T/data" --set dataset.fold=all --set features.frames=64 --epochs 1 \
  --batch 8 >"$T/out" 2>"$T/err"
rc=$?
check '[ $(grep -c "^result fold=" "$T/out") = 5 ] && grep -q "^result folds=5 test_acc_mean=" "$T/out"' \
  "fold=all runs 5 folds: $(tail -3 "$T/out")"

# Bad trial files: unknown key (at the key) and malformed YAML name file, line and column.
printf 'train:\n  epochs: 2\n  epoks: 3\n' >"$T/typo.yaml"
$P train "$T/typo.yaml" >/dev/null 2>"$T/err"
rc=$?
check '[ $rc = 2 ] && grep -q "typo.yaml:3:3: unknown setting .train.epoks." "$T/err"' "unknown key located: $(cat "$T/err")"
printf 'train:\n  epochs: [2\n' >"$T/broken.yaml"
$P train "$T/broken.yaml" >/dev/null 2>"$T/err"
rc=$?
check '[ $rc = 2 ] && grep -q "broken.yaml:[0-9]*:[0-9]*:" "$T/err"' "malformed YAML located: $(cat "$T/err")"
printf 'method: lora\nlora.rank: many\n' >"$T/badval.yaml"
$P train "$T/badval.yaml" >/dev/null 2>"$T/err"
rc=$?
check '[ $rc = 2 ] && grep -q "badval.yaml:2:12: lora.rank expects an integer" "$T/err"' "bad value located: $(cat "$T/err")"

# A corrupt WAV in the corpus: the error names it, exit 2.
cp -r "$T/data/speech_commands_v0.02" "$T/broken_gsc"
victim=$(ls "$T"/broken_gsc/yes/*.wav | head -1)
head -c 100 "$victim" >"$victim.tmp" && mv "$victim.tmp" "$victim"
$P train --data gsc "$T/broken_gsc" --epochs 1 >/dev/null 2>"$T/err"
rc=$?
check '[ $rc = 2 ] && grep -q "$(basename "$victim")" "$T/err"' "corrupt WAV named: $(cat "$T/err")"

# SIGTERM: finish the step, checkpoint, exit 75; the rerun resumes to exactly
# the result of an uninterrupted run.
args="--synthetic --epochs 300 --method lora --set lora.rank=4 --batch 8"
$P train $args >"$T/ref" 2>/dev/null
rc=$?
$P train $args --out "$T/run" >"$T/out1" 2>"$T/err" &
pid=$!
for i in $(seq 100); do [ -f "$T/run/fold1.h5" ] && break; sleep 0.05; done
kill -TERM $pid
wait $pid; rc=$?
check '[ $rc = 75 ] && grep -q "checkpoint written" "$T/err"' "SIGTERM -> exit 75 (got $rc): $(cat "$T/err")"
check '! grep -q "^result" "$T/out1"' "the stopped run did not finish"
$P train $args --out "$T/run" >"$T/out2" 2>"$T/err"
rc=$?
check '[ $rc = 0 ] && grep -q "^resuming fold 1" "$T/err"' "resumed: $(head -2 "$T/err")"
check '[ "$(grep ^result "$T/out2")" = "$(grep ^result "$T/ref")" ]' \
  "resumed result equals uninterrupted: $(grep ^result "$T/out2") vs $(grep ^result "$T/ref")"
$P train $args --set train.lr=0.1 --out "$T/run" >/dev/null 2>"$T/err"
rc=$?
check '[ $rc = 2 ] && grep -q "another trial configuration" "$T/err"' "checkpoint of another config refused: $(cat "$T/err")"

# The demo's data (two corpora, a pretrained backbone), quick mode; the study
# itself is a sweep (tests/test_sweep.sh, make demo).
$P demo --quick --data "$T/demo" >"$T/out" 2>"$T/err"
rc=$?
check '[ $rc = 0 ] && [ -f "$T/demo/backbone.h5" ] && [ -f "$T/demo/target/ESC-50/meta/esc50.csv" ] && grep -q "test accuracy on the pretraining corpus" "$T/out"' \
  "demo --quick: $(tail -3 "$T/err") $(tail -3 "$T/out")"
PETAL_DATA="$T/demo" $P sweep sweeps/demo.yaml --dry-run >"$T/out" 2>"$T/err"
check 'grep -q "^28 trials: full 8, linear 4, bitfit 4, lora 4, adapter_pfeiffer 4, prompt_deep 4" "$T/out"' \
  "sweeps/demo.yaml expands: $(tail -1 "$T/out") $(cat "$T/err")"

# A backbone file shared through the node-wide image gives the same trial as a
# private copy; an unusable image folder warns and falls back to a private copy.
$P model init --size tiny --frames 100 --out "$T/bb.h5" >/dev/null
bargs="--data esc50 $T/data --fold 2 --set features.frames=128 --set features.mel_bins=32
       --epochs 1 --batch 8 --method adapter_pfeiffer --set adapter.dim=8 --backbone $T/bb.h5"
$P train $bargs --backbone-cache "$T/images" >"$T/out_s" 2>"$T/err"
rc=$?
check '[ $rc = 0 ] && ls "$T"/images/*.img >/dev/null 2>&1' "shared backbone trial (rc $rc): $(cat "$T/err")"
$P train $bargs --backbone-cache off >"$T/out_p" 2>"$T/err"
check '[ "$(grep ^result "$T/out_s")" = "$(grep ^result "$T/out_p")" ] && grep -q ^result "$T/out_p"' \
  "shared and private backbones give one result: $(grep ^result "$T/out_s") vs $(grep ^result "$T/out_p")"
PETAL_BACKBONE_CACHE="$T/bb.h5" $P train $bargs >"$T/out_w" 2>"$T/err"
rc=$?
check '[ $rc = 0 ] && grep -q "loading a private copy" "$T/err" && [ "$(grep ^result "$T/out_w")" = "$(grep ^result "$T/out_p")" ]' \
  "an unusable image folder warns and loads privately (rc $rc): $(cat "$T/err")"

# A trial's bits do not depend on its thread count (a SLURM requeue onto a node
# of another shape resumes to the same result). 64 clips of 146 tokens a batch
# sum the weight gradients over 9344 rows: oneDNN split such a sum over its
# threads, and LoRA on 1 and 2 threads differed by 3e-8, full fine-tuning by 4e-9.
targs="--set model.size=tiny --set features.frames=128 --set features.mel_bins=128 --batch 64 --epochs 1"
for m in lora full; do
  for t in 1 2 3; do
    $P train --method $m $targs --threads $t --out "$T/thr_${m}_$t" >/dev/null 2>"$T/err" || bad "$m on $t threads: $(cat "$T/err")"
  done
  same=$(/usr/bin/python3 - "$T/thr_${m}_1" "$T/thr_${m}_2" "$T/thr_${m}_3" <<'PY'
import sys, h5py, numpy as np
f = [h5py.File(d + "/fold1.h5", "r") for d in sys.argv[1:]]
ref = f[0]["best"][()], f[0]["history"][()][:, :5]  # history without its seconds column
print(all(np.array_equal(ref[0], g["best"][()]) and np.array_equal(ref[1], g["history"][()][:, :5]) for g in f[1:]))
PY
)
  check '[ "$same" = True ]' "$m: the same best state and history on 1, 2 and 3 threads"
done

echo "trial: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
