#!/usr/bin/env bash
# `petal data synth` and `petal data info` as a user runs them: exit codes,
# output, determinism of the corpus from --seed, and error messages.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/petal-test-data-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then :; else echo "FAIL test_data_cli: $1" >&2; fail=1; fi; }

small="--classes 3 --per-class 5"
./petal data synth --out "$tmp/a" --seed 5 $small >/dev/null
check "synth exit status" '[ $? -eq 0 ]'
./petal data synth --out "$tmp/b" --seed 5 $small >/dev/null
./petal data synth --out "$tmp/c" --seed 6 $small --kind sound >/dev/null
sums() { (cd "$1" && find . -type f | sort | xargs md5sum); }
check "same seed, same corpus" '[ "$(sums "$tmp/a")" = "$(sums "$tmp/b")" ]'
check "other seed, other sounds" '! diff -q <(sums "$tmp/a/ESC-50") <(sums "$tmp/c/ESC-50") >/dev/null'
check "sound-only run makes no speech set" '[ ! -e "$tmp/c/speech_commands_v0.02" ]'

out=$(./petal data info esc50 "$tmp/a" --fold 2)
check "info esc50 exit" '[ $? -eq 0 ]'
check "info esc50 header" 'grep -q "15 items, 3 classes, 5 folds" <<<"$out"'
check "info esc50 fold 2 sizes" 'grep -q "fold 2: train 9, valid 3, test 3" <<<"$out"'
out=$(./petal data info gsc "$tmp/a/speech_commands_v0.02" --few-shot 1 --seed 3)
check "info gsc splits" 'grep -q "fold 1: train 6, valid 6, test 3" <<<"$out"'
check "info gsc few-shot" 'grep -q "few-shot k=1 (uniform, seed 3): 3 train items" <<<"$out"'

err=$(./petal data info esc50 "$tmp/nowhere" 2>&1 >/dev/null)
check "missing root exit 2" '[ $? -eq 2 ]'
check "missing root named" 'grep -q "$tmp/nowhere" <<<"$err"'
sed -i 's/^filename,fold,target/filename,fold,label/' "$tmp/b/ESC-50/meta/esc50.csv"
err=$(./petal data info esc50 "$tmp/b" 2>&1 >/dev/null)
check "bad csv exit 2" '[ $? -eq 2 ]'
check "bad csv message" 'grep -q "esc50.csv: missing column .target." <<<"$err"'
err=$(./petal data info nolayout "$tmp/a" 2>&1 >/dev/null)
check "unknown layout exit 2" '[ $? -eq 2 ]'
err=$(./petal data synth --out "$tmp/a" $small 2>&1 >/dev/null)
check "synth refuses an existing corpus" '[ $? -eq 2 ] && grep -q "already exists" <<<"$err"'
err=$(PATH=/nonexistent ./petal data synth --out "$tmp/d" 2>&1 >/dev/null)
check "synth without espeak-ng" '[ $? -ne 0 ] && grep -q "espeak-ng not found" <<<"$err"'

[ $fail -eq 0 ] && echo "test_data_cli: ok"
exit $fail
