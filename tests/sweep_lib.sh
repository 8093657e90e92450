# Shared by the sweep test scripts (sourced): a temporary folder removed on
# exit, the check counters, Open MPI as root, and a spec-error case.
#   source tests/sweep_lib.sh NAME   (sets P, PY, T, MPIRUN; ok, bad, check, spec_err)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
P=$PWD/petal
PY=/usr/bin/python3
T=$(mktemp -d "/tmp/petal_test_$1_XXXXXX")
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Under make test SAN=1, LeakSanitizer cannot tell Open MPI's own allocations (in
# plugins unloaded before exit) from petal's: leak checks are off for MPI ranks only.
MPIRUN="env ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 mpirun --oversubscribe --bind-to none"
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# (a message with $(...) resets $? before check runs: save statuses first)
check() { if eval "$1"; then ok; else bad "$2"; fi; }
# A spec that must be refused with exit 2 and a message holding the fragment.
spec_err() { # name expected-fragment yaml
  printf '%s\n' "$3" >"$T/$1.yaml"
  $P sweep "$T/$1.yaml" --dry-run >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc = 2 ] && grep -qF -- "$2" "$T/err"; then ok; else bad "$1: rc $rc, want 2 and '$2': $(cat "$T/err")"; fi
}
