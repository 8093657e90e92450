# a list (a sweep axis) in a trial
# exit: 2
# stderr: $W/t.yaml:1:15: 'train.epochs' must be a single value
printf 'train.epochs: [1, 2]\n' >t.yaml
petal train "$W/t.yaml" --threads 1
