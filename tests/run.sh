#!/usr/bin/env bash
# Runs every test binary in build/tests (on the default GEMM engine, oneDNN),
# the numeric ones again on OpenBLAS (PETAL_GEMM=openblas), then the canaries: the numeric tests
# linked against a core built with a deliberately broken backward
# (-DPETAL_CANARY), which they must reject.
# Prints one closing line: "tests: N passed, N failed" (", N SKIPPED" when a
# script could not set up what it tests).
cd "$(dirname "$0")/.."
# The build the binaries come from: build/ (make test) or build/san (make test SAN=1).
B=${PETAL_BUILD:-build}
# As the petal binary does for itself (cmd/main.c): OpenMP threads sleep when
# idle, so the suite stays fast on a machine that is doing something else too.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
passed=0; failed=0
for t in "$B"/tests/test_*; do
  [ -x "$t" ] || continue
  start=$(date +%s)
  if "$t"; then passed=$((passed + 1)); r=ok; else failed=$((failed + 1)); r=FAILED; fi
  echo "== $(basename "$t"): $r ($(( $(date +%s) - start )) s)"
done
# The numeric tests again on the reference GEMM engine (the loop above ran the
# default, oneDNN): the fixtures, gradient checks, methods and trainer hold on both.
for n in test_fixtures test_gradcheck test_methods test_train; do
  t=$B/tests/$n
  [ -x "$t" ] || continue
  start=$(date +%s)
  if PETAL_GEMM=openblas "$t" >/dev/null; then passed=$((passed + 1)); r=ok; else failed=$((failed + 1)); r=FAILED; fi
  echo "== $n (PETAL_GEMM=openblas): $r ($(( $(date +%s) - start )) s)"
done
# A script that exits 77 could not set up what it tests (tests/test_slurm.sh
# without a SLURM): counted as skipped, never as passed.
skipped=0
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  start=$(date +%s)
  bash "$t"; rc=$?
  if [ $rc = 0 ]; then passed=$((passed + 1)); r=ok
  elif [ $rc = 77 ]; then skipped=$((skipped + 1)); r="SKIPPED (could not set up; see above)"
  else failed=$((failed + 1)); r=FAILED; fi
  echo "== $(basename "$t"): $r ($(( $(date +%s) - start )) s)"
done
# A canary counts as caught only when its binary ran and its checks failed
# (exit 1): a missing binary or a crash proves nothing.
canaries=0
for t in "$B"/canary/test_*; do
  [ -x "$t" ] || continue
  canaries=$((canaries + 1))
  "$t" >/dev/null 2>&1; rc=$?
  if [ "$rc" = 1 ]; then
    echo "== canary $(basename "$t"): ok (caught the deliberately broken backward)"; passed=$((passed + 1))
  else
    echo "== canary $(basename "$t"): FAILED (exit $rc on a deliberately broken backward; 1 expected)"; failed=$((failed + 1))
  fi
done
if [ "$canaries" -lt 2 ]; then
  echo "== canaries: FAILED (only $canaries canary binaries ran; $B/canary/test_gradcheck and test_fixtures expected)"
  failed=$((failed + 1))
fi
echo "tests: $passed passed, $failed failed$([ $skipped = 0 ] || echo ", $skipped SKIPPED")"
[ "$failed" -eq 0 ]
