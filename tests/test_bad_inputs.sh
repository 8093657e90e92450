#!/usr/bin/env bash
# The bad-input corpus (tests/bad-inputs/NN-name.sh, one case per file): each
# case builds its damaged input in a fresh folder $W (from shared fixtures made
# once here) and ends with the petal command that must refuse it. Its header
# says what must happen:
#   # exit: 2                 the exit code (2 input, 1 failure; 0 for inputs
#                             that are unusual but valid and must work)
#   # stderr: FRAGMENT        must appear in the last line of stderr ($W and
#                             $FIX expand); it names the file and the field or
#                             position
#   # stdout: FRAGMENT        (optional) must appear on stdout
# Every case also fails on a signal (crash), a timeout (hang, 120 s) and, for
# exit 2 / 1, more than one line of stderr that is not a progress note. A case
# that cannot set up its input here (mounting a read-only file system without
# the right to) exits 77 through `skip`: counted as skipped, never as passed.
# PETAL=/path/to/petal runs the corpus against another binary (to see that
# the cases can fail: the code before this corpus fails most of them).
cd "$(dirname "$0")/.."
ROOT=$PWD
export PETAL=${PETAL:-$ROOT/petal} H5POKE=$ROOT/${PETAL_BUILD:-build}/tests/h5poke BADDIR=$ROOT/tests/bad-inputs
export HF=$ROOT/tests/fixtures/hf_tiny OMP_NUM_THREADS=1
FIX=$(mktemp -d /tmp/petal_bad_XXXXXX)
export FIX PETAL_BACKBONE_CACHE=$FIX/bbcache
trap 'rm -rf "$FIX"' EXIT
for need in "$PETAL" "$H5POKE"; do
  [ -x "$need" ] || { echo "bad-inputs: $need missing (make petal ${PETAL_BUILD:-build}/tests/h5poke)"; exit 1; }
done
. "$BADDIR/_lib.sh"
make_fixtures || { echo "bad-inputs: FAILED to make the fixtures"; exit 1; }

passed=0; failed=0; skipped=0; cases=0
start=$(date +%s)
# in numeric order (01 .. 99, 100 ..); the list on fd 3, as cases may read stdin
while IFS= read -r c <&3; do
  cases=$((cases + 1))
  name=$(basename "$c" .sh)
  W=$(mktemp -d "$FIX/case.XXXXXX")
  want_rc=$(sed -n 's/^# exit: //p' "$c")
  want_err=$(sed -n 's/^# stderr: //p' "$c")
  want_out=$(sed -n 's/^# stdout: //p' "$c")
  want_err=${want_err//\$W/$W}; want_err=${want_err//\$FIX/$FIX}
  (cd "$W" && W=$W timeout 120 bash -c '. "$BADDIR/_lib.sh"; . "$1"' _ "$c") \
    >"$W/.stdout" 2>"$W/.stderr"
  rc=$?
  # a case that died before its trap leaves its mounts: never leave them behind
  grep -o " $W/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  last=$(grep -v '^trial fold=\|^resuming fold\|^few-shot:' "$W/.stderr" | tail -n 1)
  lines=$(grep -cv '^trial fold=\|^resuming fold\|^few-shot:' "$W/.stderr")
  why=""
  if [ "$rc" = 77 ]; then
    skipped=$((skipped + 1))
    printf '  skip  %-28s %s\n' "$name" "$(grep '^SKIP: ' "$W/.stderr" | tail -n 1)"
    rm -rf "$W"
    continue
  fi
  if [ "$rc" = 124 ]; then why="hung (timeout 120 s)"
  elif [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128))"
  elif [ "$rc" != "$want_rc" ]; then why="exit $rc, expected $want_rc"
  elif [ -z "$want_err" ] && [ "$want_rc" != 0 ]; then why="case has no '# stderr:' line"
  elif [ -n "$want_err" ] && [[ "$last" != *"$want_err"* ]]; then why="stderr does not say: $want_err"
  elif [ "$want_rc" != 0 ] && [ "$lines" -gt 1 ]; then why="$lines lines on stderr, one expected"
  elif [ -n "$want_out" ] && ! grep -qF -- "$want_out" "$W/.stdout"; then why="stdout does not say: $want_out"
  elif grep -q "AddressSanitizer\|runtime error:\|LeakSanitizer" "$W/.stderr"; then why="sanitizer report"
  fi
  if [ -z "$why" ]; then
    passed=$((passed + 1))
    printf '  ok    %-28s %s\n' "$name" "${last:-(exit 0)}"
  else
    failed=$((failed + 1))
    printf '  FAIL  %-28s %s\n' "$name" "$why"
    sed 's/^/          stderr| /' "$W/.stderr" | head -n 8
  fi
  rm -rf "$W"
done 3< <(printf '%s\n' "$BADDIR"/[0-9]*.sh | sort -V)
echo "bad-inputs: $passed passed, $failed failed$([ $skipped = 0 ] || echo ", $skipped SKIPPED") ($cases cases, $(( $(date +%s) - start )) s)"
[ "$cases" -ge 30 ] || { echo "bad-inputs: only $cases cases (30 expected)"; exit 1; }
[ "$failed" -eq 0 ]
