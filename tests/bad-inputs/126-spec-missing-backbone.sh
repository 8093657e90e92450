# a backbone file that does not exist: refused before the store is made
# exit: 2
# stderr: $W/s.yaml:2:21: model.backbone $W/bb.h5: No such file or directory
printf 'base:\n  model: {backbone: "%s/bb.h5"}\ngrid:\n  train.seed: [1, 2]\n' "$W" >s.yaml
petal sweep "$W/s.yaml" --out "$W/run"
rc=$?
[ ! -e run ] || echo 'a store was started' >&2
exit $rc
