# sampled points x list axes past the limit (100,000 points x 3 seeds)
# exit: 2
# stderr: $W/s.yaml:1:1: the grid expands to 300,000 trials (train.seed 3, sample.n 100000)
printf 'grid:\n  train.seed: [1, 2, 3]\n  train.lr: {log: [1e-4, 1e-2]}\nsample: {n: 100000}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
