# early stopping on a metric petal does not record per epoch
# exit: 2
# stderr: $W/s.yaml:3:36: early_stop.metric expects valid_acc, got 'test_acc'
printf 'grid:\n  train.seed: [1, 2]\nearly_stop: {kind: median, metric: test_acc}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
