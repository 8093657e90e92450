#!/usr/bin/env bash
# valgrind memcheck on core unit tests (make valgrind): each must run clean --
# no invalid read or write, no use of uninitialised values, no definite leak.
# OpenMP's and OpenBLAS's thread pools keep memory until exit by design
# ("possibly lost" / "still reachable"): not counted.
cd "$(dirname "$0")/.."
B=${PETAL_BUILD:-build}  # make valgrind: build/valgrind
# oneDNN's JIT-generated kernels (the default GEMM engine since issue 17) read
# whole vectors at the tail of oneDNN's own scratch buffers, which memcheck
# reports ("Invalid read of size 32" in ??? after a libdnnl block): the
# reference engine keeps the check on petal's code.
export PETAL_GEMM=openblas
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive
failed=0
for t in "$@"; do
  start=$(date +%s)
  if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
       --show-leak-kinds=definite --track-origins=yes "$B/tests/$t" >"$B/tests/$t.valgrind" 2>&1; then
    echo "== valgrind $t: clean ($(( $(date +%s) - start )) s)"
  else
    echo "== valgrind $t: FAILED ($B/tests/$t.valgrind)"
    grep -m 10 "==[0-9]*== \(Invalid\|Conditional\|Use of\|.*definitely lost\|Mismatched\)" "$B/tests/$t.valgrind"
    failed=1
  fi
done
exit $failed
