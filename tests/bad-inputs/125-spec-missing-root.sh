# a dataset root that does not exist: refused before the store is made, not by every trial
# exit: 2
# stderr: $W/s.yaml:2:34: dataset.root $W/nowhere: No such file or directory
printf 'base:\n  dataset: {layout: esc50, root: "%s/nowhere"}\ngrid:\n  train.seed: [1, 2]\n' "$W" >s.yaml
petal sweep "$W/s.yaml" --out "$W/run"
rc=$?
[ ! -e run ] || echo 'a store was started' >&2
exit $rc
