# an empty list of methods
# exit: 2
# stderr: $W/s.yaml:2:11: method: empty axis
printf 'grid:\n  method: []\n  train.seed: [1]\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
