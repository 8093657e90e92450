# ASHA with eta 1 (no trial would ever be paused)
# exit: 2
# stderr: $W/s.yaml:3:31: early_stop.eta expects an integer in [2, 100], got '1'
printf 'grid:\n  train.seed: [1, 2]\nearly_stop: {kind: asha, eta: 1}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
