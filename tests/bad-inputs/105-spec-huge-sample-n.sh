# sample.n beyond what one sweep takes
# exit: 2
# stderr: $W/s.yaml:3:13: sample.n expects an integer in [1, 100000], got '5000000'
printf 'grid:\n  train.lr: {log: [1e-4, 1e-2]}\nsample: {n: 5000000}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
