# a grid axis with no values (the sweep would have no trials along it)
# exit: 2
# stderr: $W/s.yaml:3:15: train.seed: empty axis
printf 'grid:\n  method: [linear]\n  train.seed: []\n' >s.yaml
petal sweep "$W/s.yaml" --out "$W/run"
rc=$?
[ ! -e run ] || echo 'a store was started' >&2
exit $rc
