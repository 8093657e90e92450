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
}
