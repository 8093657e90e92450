# the same key flat and nested
# exit: 2
# stderr: $W/t.yaml:3:3: duplicate key 'train.epochs'
printf 'train.epochs: 1\ntrain:\n  epochs: 2\n' >t.yaml
petal train "$W/t.yaml" --threads 1
