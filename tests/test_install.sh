#!/usr/bin/env bash
# Installing like HPC software: `make install PREFIX=...` (binary, man page,
# ready-made specs, docs), `petal --version` from the installed binary, the
# man page renders without warnings and covers every subcommand, and the Spack
# recipe is valid Python whose dependencies are the Makefile's libraries.
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
T=$(mktemp -d /tmp/petal_test_install_XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# ---- make install --------------------------------------------------------------------
make --no-print-directory install PREFIX="$T/prefix" >"$T/out" 2>&1; rc=$?
I=$T/prefix
check '[ $rc = 0 ] && [ -x $I/bin/petal ] && [ -f $I/share/man/man1/petal.1 ] && [ -f $I/share/petal/docs/README.md ] && [ -f $I/share/petal/docs/SETTINGS.md ] && [ -f $I/share/petal/sweeps/esc50-methods.yaml ]' \
  "make install PREFIX: rc $rc $(tail -3 "$T/out"); $(cd "$T" && find prefix | tr '\n' ' ')"
$I/bin/petal --version >"$T/v" 2>&1; rc=$?
check '[ $rc = 0 ] && grep -Eq "^petal [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]{7,}\)$" "$T/v" && grep -q "^OpenBLAS 0\." "$T/v" && grep -q "^HDF5 1\." "$T/v" && grep -q "^FFTW fftw-3" "$T/v" && grep -q "^libyaml 0\." "$T/v" && grep -q "^Open MPI v" "$T/v"' \
  "installed petal --version: rc $rc $(cat "$T/v")"
$I/bin/petal version >"$T/v2" 2>&1
check 'cmp -s "$T/v" "$T/v2"' "petal version = petal --version"
PETAL_DATA=/data PETAL_BACKBONE=/b.h5 $I/bin/petal sweep $I/share/petal/sweeps/esc50-methods.yaml --dry-run >"$T/out" 2>&1
check 'grep -q "^36 trials" "$T/out"' "the installed study expands: $(tail -1 "$T/out")"

# ---- the man page ----------------------------------------------------------------------
MANWIDTH=100 man --warnings -l $I/share/man/man1/petal.1 >"$T/man" 2>"$T/warn"; rc=$?
check '[ $rc = 0 ] && [ ! -s "$T/warn" ] && grep -q "^NAME" "$T/man" && grep -q "EXIT STATUS" "$T/man"' \
  "man -l renders without warnings: rc $rc $(head -5 "$T/warn")"
MANPATH=$I/share/man man -w petal >"$T/out" 2>&1
check 'grep -qx "$I/share/man/man1/petal.1" "$T/out"' "man finds petal(1) under PREFIX/share/man: $(cat "$T/out")"
missing=
for c in $(./petal --help | awk '/^commands:/ {on = 1; next} on && !NF {exit} on {print $1}'); do
  grep -q "^   petal $c\b" "$T/man" || missing="$missing $c"
done
check '[ -z "$missing" ] && [ "$(./petal --help | awk "/^commands:/ {on = 1; next} on && !NF {exit} on" | wc -l)" -ge 12 ]' \
  "the man page has a section for every subcommand; missing:$missing"

# ---- the Spack recipe ---------------------------------------------------------------------
# Spack's names for the Makefile's pkg-config packages and libraries.
declare -A spack=([hdf5]=hdf5 [fftw3f]=fftw [yaml-0.1]=libyaml [sndfile]=libsndfile [samplerate]=libsamplerate
  [ompi-c]=openmpi [libxxhash]=xxhash [gsl]=gsl [openblas]=openblas)
make_deps=$(sed -n 's/^PKGS *:= *//p' Makefile)
make_deps="$make_deps $(grep '^LDLIBS' Makefile | grep -o -- ' -l[a-z0-9_]*' | sed 's/^ -l//' | grep -vx m)"
make_deps="$make_deps $(grep '^LDLIBS' Makefile | grep -o -- '--libs [a-z0-9_]*' | cut -d' ' -f2)"
want=
for d in $make_deps; do
  [ -n "${spack[$d]:-}" ] || bad "the Makefile's library $d has no Spack name in tests/test_install.sh"
  want="$want ${spack[$d]:-$d}"
done
want=$(echo $want | tr ' ' '\n' | sort -u | tr '\n' ' ')
mkdir -p "$T/stub/spack"
cat >"$T/stub/spack/package.py" <<'PYEOF'
# the names a recipe imports from spack.package, recording depends_on
deps = []
class MakefilePackage: pass
def depends_on(spec, type=None, when=None): deps.append((spec, type))
def version(*a, **k): pass
def variant(*a, **k): pass
def maintainers(*a): pass
def license(*a, **k): pass
def make(*a, **k): pass
PYEOF
: >"$T/stub/spack/__init__.py"
got=$(PYTHONPATH="$T/stub" $PY - packaging/spack/package.py "$T/recipe.pyc" <<'PYEOF'
import sys, re, py_compile, importlib.util
py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)
spec = importlib.util.spec_from_file_location("petal_recipe", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
import spack.package as sp
assert issubclass(m.Petal, sp.MakefilePackage) and callable(m.Petal.install)
link = {re.split(r"[ @+~%=]", s, 1)[0] for s, t in sp.deps if t is None or "link" in (t if isinstance(t, (list, tuple)) else [t])}
print(" ".join(sorted(link)))
PYEOF
); rc=$?
check '[ $rc = 0 ] && [ "$got " = "$want" ]' "Spack recipe compiles and links exactly the Makefile's libraries: rc $rc, recipe '$got', Makefile '$want'"

echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
