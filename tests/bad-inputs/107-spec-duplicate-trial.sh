# two trials with the same settings after expansion (0.001 and 1e-3 are one value)
# exit: 2
# stderr: $W/s.yaml:2:21: train.lr 1e-3 is the same value as 0.001 (line 2): this trial (the grid) comes out twice
printf 'grid:\n  train.lr: [0.001, 1e-3]\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
