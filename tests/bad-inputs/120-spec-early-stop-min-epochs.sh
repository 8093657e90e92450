# ASHA with a first rung at 0 epochs
# exit: 2
# stderr: $W/s.yaml:3:38: early_stop.min_epochs expects an integer in [1, 100000], got '0'
printf 'grid:\n  train.seed: [1, 2]\nearly_stop: {kind: asha, min_epochs: 0}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
