# Helpers the bad-input cases share (sourced before each case, inside $W).
# $PETAL the binary, $H5POKE the HDF5 damager, $FIX the shared fixtures
# (made once by make_fixtures), $HF the tiny HuggingFace checkpoint fixture.
mk() { python3 "$BADDIR/_mk.py" "$@"; }
petal() { "$PETAL" "$@"; }
# A copy of the tiny ESC-50-like corpus at $1 (10 clips, 2 classes, 5 folds).
esc_copy() { cp -r "$FIX/esc" "$1"; }
# Trains one epoch of a tiny model on an ESC-50-like corpus at $1.
esc_train() {
  local root=$1; shift
  petal train --data esc50 "$root" --epochs 1 --batch 2 --threads 1 \
    --set features.frames=16 --set features.mel_bins=32 "$@"
}
# A copy of the mid-epoch checkpoint of the synthetic trial ($1 = folder) and
# the command that resumes it (ck_resume DIR).
ck_copy() { mkdir -p "$1" && cp "$FIX/ck/fold1.h5" "$1/"; }
ck_resume() { petal train --synthetic --epochs 2 --threads 1 --out "$1"; }

# A copy of the finished two-trial store $FIX/store (drill trials, no training)
# at $1, and the sweep that made it (store_sweep RUN).
store_copy() { cp -r "$FIX/store" "$1"; }
store_sweep() { petal sweep "$FIX/s.yaml" --out "$1"; }
# A sweep spec at $1 of two tiny trials on the ESC-50-like corpus at $2, with
# the feature cache at $3 (default: the corpus's .petal-cache). Line 2 holds
# dataset.root, line 3 the features.
esc_spec() {
  printf 'base:\n  dataset: {layout: esc50, root: "%s"}\n  features: {frames: 16, mel_bins: 32%s}\n' \
    "$2" "${3:+, cache: \"$3\"}" >"$1"
  printf '  train: {epochs: 1, batch: 2}\ngrid:\n  train.seed: [1, 2]\n' >>"$1"
}
# The case cannot run here (exit 77: counted as skipped, not passed).
skip() { echo "SKIP: $*" >&2; exit 77; }
# A read-only file system at $1 (a tmpfs, holding a copy of folder $2 if given),
# unmounted when the case ends. As root, permission bits do not stop writes: a
# read-only mount does. Skips the case where mounting is not permitted.
_mounts=()
ro_mount() {
  mkdir -p "$1" && mount -t tmpfs -o size=16m tmpfs "$1" 2>/dev/null || skip "cannot mount a tmpfs at $1"
  _mounts+=("$(realpath "$1")")
  trap 'for m in "${_mounts[@]}"; do umount "$m"; done' EXIT
  if [ -n "$2" ]; then cp -r "$2"/. "$1"/ || return 1; fi
  mount -o remount,ro "$1" || skip "cannot remount $1 read-only"
}

make_fixtures() {
  "$PETAL" model init --size tiny --out "$FIX/bb.h5" --frames 48 >/dev/null || return 1
  "$PETAL" train --synthetic --epochs 2 --threads 1 --out "$FIX/ck" --stop-after-steps 3 \
    >/dev/null 2>&1
  [ -f "$FIX/ck/fold1.h5" ] || return 1
  local e="$FIX/esc/ESC-50"
  mkdir -p "$e/meta" "$e/audio"
  echo "filename,fold,target,category,esc10,src_file,take" >"$e/meta/esc50.csv"
  for i in 0 1 2 3 4 5 6 7 8 9; do
    local fold=$((i % 5 + 1)) target=$((i / 5))
    python3 "$BADDIR/_mk.py" wav "$e/audio/$i.wav" --n 4000 || return 1
    echo "$i.wav,$fold,$target,class$target,False,$i,A" >>"$e/meta/esc50.csv"
  done
  printf 'study: fix\nbase: {drill: noop}\ngrid: {train.seed: [1, 2]}\n' >"$FIX/s.yaml"
  "$PETAL" sweep "$FIX/s.yaml" --out "$FIX/store" >/dev/null 2>&1 && [ -f "$FIX/store/results.h5" ]
}
