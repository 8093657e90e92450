# an unknown early-stopping rule
# exit: 2
# stderr: $W/s.yaml:3:20: early_stop.kind expects asha or median, got 'hyperband'
printf 'grid:\n  train.seed: [1, 2]\nearly_stop: {kind: hyperband}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
