#!/usr/bin/env bash
# `petal model import`, `petal model init` and `petal predict` as a user runs
# them: the tiny HF fixture (tests/fixtures/hf_tiny) imported and classified,
# its printed logits against PyTorch's (tests/hf_ref.py), the output format,
# re-gridded imports, and exit 2 with one line on stderr for broken inputs
# (files broken here from the good ones).
cd "$(dirname "$0")/.."
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
tmp=$(mktemp -d /tmp/petal_import_cli_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out; err=$tmp/err
fix=tests/fixtures/hf_tiny
expect_rc() { # rc command...
  local want=$1; shift
  "$@" >"$out" 2>"$err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$* -> rc $rc, want $want: $(head -c 400 "$err")"; fi
}
one_line_err() { # substring...
  [ "$(wc -l <"$err")" = 1 ] && ok || bad "stderr is not one line: $(cat "$err")"
  for s in "$@"; do grep -qF -- "$s" "$err" && ok || bad "stderr lacks '$s': $(cat "$err")"; done
}
# PyTorch's logits for frames T, one per line.
expected() {
  h5dump -d "/T$1/logits" -y -w 0 -m "%.17g" $fix/expected.h5 | sed -n '/DATA {/,/}/p' |
    grep -o -- '-\?[0-9][0-9.e+-]*'
}

# ---- import + predict at the checkpoint's frames and re-gridded ----
for T in 64 48 100; do
  flag=; [ "$T" != 64 ] && flag="--frames $T"
  expect_rc 0 ./petal model import --hf $fix --out "$tmp/bb$T.h5" $flag
  grep -q "frames=$T .*classifier K=5 labels=id2label" "$out" && ok || bad "import summary: $(cat "$out")"
  expect_rc 0 ./petal predict --backbone "$tmp/bb$T.h5" $fix/clip.wav
  [ "$(wc -l <"$out")" = 5 ] && ok || bad "T=$T: 5 lines expected: $(cat "$out")"
  # FILE rank label logit score; ranks 1..5; logits descending; score = sigmoid(logit)
  awk -F'\t' -v f=$fix/clip.wav 'NF != 5 || $1 != f || $2 != NR || (NR > 1 && $4 > prev) ||
      ($5 - 1 / (1 + exp(-$4)))^2 > 1e-11 { bad = 1 } { prev = $4 } END { exit bad }' "$out" &&
    ok || bad "T=$T: output format: $(cat "$out")"
  # every class's printed logit against PyTorch (by label order of id2label)
  paste <(expected $T) <(printf 'Speech\nDog "woof"\nCafé ambience\nBird 🐦 song\nSiren, alarm\n') >"$tmp/want"
  maxd=$(awk -F'\t' 'NR == FNR { want[$2] = $1; next } { d = $4 - want[$3]; if (d < 0) d = -d;
      if (!($3 in want)) d = 99; if (d > m) m = d } END { printf "%.3g", m }' "$tmp/want" "$out")
  awk -v d="$maxd" 'BEGIN { exit !(d <= 1e-3) }' && ok || bad "T=$T: printed logits off PyTorch by $maxd"
  echo "  frames=$T: printed logits vs PyTorch max |d| $maxd"
done

# ---- predict: --top, several files, failures do not stop the others ----
expect_rc 0 ./petal predict --backbone "$tmp/bb64.h5" --top 2 $fix/clip.wav $fix/clip.wav
[ "$(wc -l <"$out")" = 4 ] && ok || bad "--top 2 over two files: $(cat "$out")"
expect_rc 0 ./petal predict --backbone "$tmp/bb64.h5" --top 99 $fix/clip.wav
[ "$(wc -l <"$out")" = 5 ] && ok || bad "--top beyond K prints K lines"
head -c 3000 $fix/clip.wav >"$tmp/cut.wav"
printf 'not audio at all' >"$tmp/garbage.wav"
expect_rc 2 ./petal predict --backbone "$tmp/bb64.h5" "$tmp/missing.wav" $fix/clip.wav "$tmp/garbage.wav" "$tmp/cut.wav"
[ "$(wc -l <"$out")" = 5 ] && ok || bad "the good file is still classified: $(cat "$out")"
[ "$(wc -l <"$err")" = 3 ] && ok || bad "one error line per bad file: $(cat "$err")"
for f in missing.wav garbage.wav cut.wav; do grep -q "$f" "$err" && ok || bad "error names $f"; done
expect_rc 2 ./petal predict --backbone "$tmp/none.h5" $fix/clip.wav
one_line_err "none.h5"
expect_rc 2 ./petal predict --backbone "$fix/config.json" $fix/clip.wav
one_line_err "config.json: cannot open as HDF5"
expect_rc 2 ./petal predict $fix/clip.wav
expect_rc 2 ./petal predict --backbone "$tmp/bb64.h5" --top 0 $fix/clip.wav
one_line_err -- "--top"

# ---- model init ----
expect_rc 0 ./petal model init --size tiny --frames 64 --seed 3 --out "$tmp/init.h5"
expect_rc 2 ./petal predict --backbone "$tmp/init.h5" $fix/clip.wav
one_line_err "init.h5: no classifier"
expect_rc 0 ./petal model init --size tiny --frames 64 --classes 3 --out "$tmp/init3.h5"
expect_rc 0 ./petal predict --backbone "$tmp/init3.h5" $fix/clip.wav
[ "$(cut -f3 "$out" | sort | tr '\n' ' ')" = "class_0 class_1 class_2 " ] && ok || bad "class_<i> labels: $(cat "$out")"
expect_rc 0 ./petal model init --size tiny --frames 64 --seed 3 --out "$tmp/init_b.h5"
cmp -s <(h5dump -d /params/encoder.layer.0.output.dense.weight "$tmp/init.h5" | tail -n +3) \
       <(h5dump -d /params/encoder.layer.0.output.dense.weight "$tmp/init_b.h5" | tail -n +3) &&
  ok || bad "model init is reproducible from the seed"
expect_rc 2 ./petal model init --size huge --out "$tmp/x.h5"
one_line_err "unknown model size 'huge'"
expect_rc 2 ./petal model init --size tiny
one_line_err -- "--out"

# ---- import errors: exit 2, one line naming the file and tensor or field ----
mk() { mkdir -p "$tmp/$1" && cp $fix/config.json $fix/model.safetensors "$tmp/$1/"; }
# byte offset of a string inside the safetensors header
at() { grep -obUaF -- "$2" "$1" | head -1 | cut -d: -f1; }
patch_at() { printf '%s' "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

mk trunc; truncate -s -5000 "$tmp/trunc/model.safetensors"
expect_rc 2 ./petal model import --hf "$tmp/trunc" --out "$tmp/x.h5"
one_line_err "trunc/model.safetensors: tensor " "truncated"

mk header; patch_at "$tmp/header/model.safetensors" 8 '['
expect_rc 2 ./petal model import --hf "$tmp/header" --out "$tmp/x.h5"
one_line_err "header/model.safetensors: header:1:"

mk shape; s='"classifier.dense.weight":{"dtype":"F32","shape":[5,64]'
off=$(at "$tmp/shape/model.safetensors" "$s")
patch_at "$tmp/shape/model.safetensors" $((off + ${#s} - 5)) '64,5]'
expect_rc 2 ./petal model import --hf "$tmp/shape" --out "$tmp/x.h5"
one_line_err "shape/model.safetensors: tensor classifier.dense.weight has shape (64, 5), expected (5, 64)"

mk missing; s='"audio_spectrogram_transformer.encoder.layer.0.output.dense.bias"'
off=$(at "$tmp/missing/model.safetensors" "$s")
patch_at "$tmp/missing/model.safetensors" $((off + ${#s} - 2)) 'X'
expect_rc 2 ./petal model import --hf "$tmp/missing" --out "$tmp/x.h5"
one_line_err "missing tensor audio_spectrogram_transformer.encoder.layer.0.output.dense.bias"

mk field; grep -v '"num_attention_heads"' $fix/config.json >"$tmp/field/config.json"
expect_rc 2 ./petal model import --hf "$tmp/field" --out "$tmp/x.h5"
one_line_err "field/config.json:1:1: missing field \"num_attention_heads\""

mk json; head -c 300 $fix/config.json >"$tmp/json/config.json"
expect_rc 2 ./petal model import --hf "$tmp/json" --out "$tmp/x.h5"
one_line_err "json/config.json:"

mkdir -p "$tmp/pickle"; cp $fix/config.json "$tmp/pickle/"; : >"$tmp/pickle/pytorch_model.bin"
expect_rc 2 ./petal model import --hf "$tmp/pickle" --out "$tmp/x.h5"
one_line_err "pytorch_model.bin: PyTorch pickle checkpoints are not read"

expect_rc 2 ./petal model import --hf "$tmp/nodir" --out "$tmp/x.h5"
one_line_err "nodir/config.json: cannot open"
expect_rc 2 ./petal model import --out "$tmp/x.h5"
one_line_err -- "--hf DIR and --out FILE are required"
expect_rc 2 ./petal model import --hf $fix --out "$tmp/x.h5" --frames 8
one_line_err "smaller than one 16x16 patch"
[ ! -e "$tmp/x.h5" ] && ok || bad "no output file after failed imports"
expect_rc 1 ./petal model import --hf $fix --out "$tmp/no/such/dir/x.h5"
one_line_err "cannot create"

echo "import cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
