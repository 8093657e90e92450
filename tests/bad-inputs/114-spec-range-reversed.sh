# a range whose low end is above its high end
# exit: 2
# stderr: $W/s.yaml:2:21: train.seed: the range [9, 3] is empty
printf 'grid:\n  train.seed: {int: [9, 3]}\nsample: {n: 4}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
