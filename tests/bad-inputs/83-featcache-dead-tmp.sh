# a killed cache build's fbank-*.h5.tmp.<pid> is removed by the next build (a live one's is kept)
# exit: 0
esc_copy c
mkdir -p c/.petal-cache
: >c/.petal-cache/junk
esc_train "$W/c" >/dev/null 2>&1 || exit 1
f=$(ls c/.petal-cache/fbank-*.h5 | head -1)
: >"$f.tmp.999999"
: >"$f.tmp.$$"
rm "$f"
esc_train "$W/c" >/dev/null 2>&1 || exit 1
ls c/.petal-cache
[ ! -e "$f.tmp.999999" ] || { echo 'dead build left its temp file' >&2; exit 1; }
[ -e "$f.tmp.$$" ] || { echo 'a live build lost its temp file' >&2; exit 1; }
