# an unknown sampling kind
# exit: 2
# stderr: $W/s.yaml:3:22: sample.kind expects random or sobol, got 'halton'
printf 'grid:\n  train.lr: {log: [1e-4, 1e-2]}\nsample: {n: 4, kind: halton}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
