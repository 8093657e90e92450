# a misspelt key
# exit: 2
# stderr: $W/t.yaml:1:1: unknown setting 'trian.epochs' (did you mean train.epochs?)
printf 'trian.epochs: 1\n' >t.yaml
petal train "$W/t.yaml" --threads 1
