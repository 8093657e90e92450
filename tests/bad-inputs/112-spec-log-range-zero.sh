# a log-scale range that includes 0
# exit: 2
# stderr: $W/s.yaml:2:19: train.lr: the range [0, 0.01] is empty or not positive (log scale)
printf 'grid:\n  train.lr: {log: [0, 1e-2]}\nsample: {n: 4}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
