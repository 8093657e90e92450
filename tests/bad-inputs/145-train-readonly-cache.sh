# petal train with features.cache on a read-only file system: refused before the data loads, naming the folder
# exit: 2
# stderr: petal train: features.cache $W/ro: not writable (Read-only file system), and it holds no features of these settings
esc_copy c
ro_mount ro
esc_train "$W/c" --set features.cache="$W/ro" --out "$W/ck"
rc=$?
[ ! -e ck/fold1.h5 ] || echo 'a checkpoint was written' >&2
exit $rc
