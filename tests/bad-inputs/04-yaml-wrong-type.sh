# a word where an integer belongs
# exit: 2
# stderr: $W/t.yaml:2:11: train.epochs expects an integer
printf 'train:\n  epochs: many\n' >t.yaml
petal train "$W/t.yaml" --threads 1
