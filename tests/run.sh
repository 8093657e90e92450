#!/usr/bin/env bash
# Runs every test binary in build/tests, then the canary (a core built with a
# deliberately broken backward, which the gradient check must reject).
# Prints one closing line: "tests: N passed, N failed".
cd "$(dirname "$0")/.."
passed=0; failed=0
for t in build/tests/test_*; do
  [ -x "$t" ] || continue
  start=$(date +%s)
  if "$t"; then passed=$((passed + 1)); r=ok; else failed=$((failed + 1)); r=FAILED; fi
  echo "== $(basename "$t"): $r ($(( $(date +%s) - start )) s)"
done
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  start=$(date +%s)
  if bash "$t"; then passed=$((passed + 1)); r=ok; else failed=$((failed + 1)); r=FAILED; fi
  echo "== $(basename "$t"): $r ($(( $(date +%s) - start )) s)"
done
if build/canary/test_gradcheck >/dev/null 2>&1; then
  echo "== canary: FAILED (gradient check passed on a broken backward)"; failed=$((failed + 1))
else
  echo "== canary: ok (gradient check caught the broken backward)"; passed=$((passed + 1))
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
