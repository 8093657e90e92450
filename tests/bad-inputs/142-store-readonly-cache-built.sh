# a feature cache built before and shared read-only serves the trials: it must work
# exit: 0
esc_copy c
esc_train "$W/c" >/dev/null 2>&1 || exit 1
ro_mount ro "$W/c/.petal-cache"
esc_spec s.yaml "$W/c" "$W/ro"
petal sweep "$W/s.yaml" --out "$W/run" --threads 1 >out || exit
grep -q '2 done, 0 failed' out || { echo "the trials did not finish: $(tail -1 out)" >&2; exit 1; }
