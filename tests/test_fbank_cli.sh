#!/usr/bin/env bash
# `petal data fbank` and `petal bench fbank` as a user meets them: shapes for
# real files (sox writes them), --raw / --dump / --mel-bins / --max-length,
# exit 2 with a one-line message naming the file for bad input.
cd "$(dirname "$0")/.."
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
dir=$(mktemp -d /tmp/petal_fbank_cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
out=$dir/out; err=$dir/err
expect_rc() { # rc command...
  local want=$1; shift
  "$@" >"$out" 2>"$err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$* -> rc $rc, want $want: $(head -c 300 "$err")"; fi
}
has() { grep -q -- "$1" "$2" && ok || bad "$3: '$1' not in $(head -c 300 "$2")"; }

# 1 s at 44.1 kHz, stereo FLAC: resampled to 16000 samples -> 98 frames.
sox -n -r 44100 -c 2 -b 16 "$dir/tone.flac" synth 1 sine 440 sine 1000 2>/dev/null
expect_rc 0 ./petal data fbank "$dir/tone.flac"
has "rate=44100 samples=44100" "$out" "decoded length"
has "16000 Hz samples=16000" "$out" "resampled length"
has "fbank frames=98 features shape=(1024, 128) padded=926" "$out" "features shape"
has "^stats min=" "$out" "stats line"
expect_rc 0 ./petal data fbank "$dir/tone.flac" --raw --mel-bins 64
has "fbank frames=98 raw shape=(98, 64)" "$out" "raw shape"
expect_rc 0 ./petal data fbank "$dir/tone.flac" --max-length 50 --dump
[ "$(wc -l <"$out")" = 50 ] && ok || bad "--dump writes 50 rows"
[ "$(head -1 "$out" | wc -w)" = 128 ] && ok || bad "--dump rows hold 128 values"
has "cut=48" <(./petal data fbank "$dir/tone.flac" --max-length 50) "cut count"

# 10 ms clip: shorter than one frame, all padding.
sox -n -r 16000 -b 16 "$dir/blip.wav" synth 0.01 sine 440 2>/dev/null
expect_rc 0 ./petal data fbank "$dir/blip.wav"
has "fbank frames=0 features shape=(1024, 128) padded=1024" "$out" "sub-frame clip"

# Bad input: exit 2, the file named on one stderr line, nothing on stdout.
head -c 3000 /dev/urandom >"$dir/junk.wav"
: >"$dir/empty.wav"
sox -n -r 16000 -b 16 "$dir/noise.flac" synth 1 whitenoise vol 0.3 2>/dev/null
head -c "$(( $(stat -c %s "$dir/noise.flac") / 2 ))" "$dir/noise.flac" >"$dir/cut.flac"
for f in "$dir/missing.wav" "$dir/junk.wav" "$dir/empty.wav" "$dir/cut.flac"; do
  expect_rc 2 ./petal data fbank "$f"
  has "$f" "$err" "error names the file"
  [ "$(wc -l <"$err")" = 1 ] && [ ! -s "$out" ] && ok || bad "$f: one stderr line, empty stdout"
done
expect_rc 2 ./petal data fbank
expect_rc 2 ./petal data fbank "$dir/tone.flac" --mel-bins 0
expect_rc 2 ./petal data fbank "$dir/tone.flac" --frobnicate
expect_rc 0 ./petal data fbank --help

expect_rc 0 ./petal bench fbank --seconds 0.5 --clips 10
grep -Eq '^bench fbank seconds=0.5 clips_per_s=[0-9]+\.[0-9]$' "$out" && ok || bad "bench line: $(cat "$out")"
expect_rc 2 ./petal bench fbank --clips x

echo "fbank_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
