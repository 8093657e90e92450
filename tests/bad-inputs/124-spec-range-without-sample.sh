# a range but no sample: section to draw from it
# exit: 2
# stderr: $W/s.yaml:2:3: train.lr is a range: add `sample: {n: N}` to draw from it
printf 'grid:\n  train.lr: {log: [1e-4, 1e-2]}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
