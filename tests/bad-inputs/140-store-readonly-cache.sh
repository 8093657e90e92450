# features.cache on a read-only file system: refused up front, naming the spec line and the folder
# exit: 2
# stderr: $W/s.yaml:3:47: features.cache $W/ro: not writable (Read-only file system), and it holds no features of these settings
esc_copy c
ro_mount ro
esc_spec s.yaml "$W/c" "$W/ro"
petal sweep "$W/s.yaml" --out "$W/run"
rc=$?
[ ! -e run ] || echo 'a store was started' >&2
exit $rc
