# a spec file holding two YAML documents (the second one was ignored)
# exit: 2
# stderr: $W/s.yaml:3:1: a second YAML document: a spec is one document
printf 'grid:\n  train.seed: [1, 2]\n---\ngrid:\n  train.seed: [3]\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
