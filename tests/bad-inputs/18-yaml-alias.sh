# an alias in a trial file (the event reader does not resolve them)
# exit: 2
# stderr: $W/t.yaml:2:17: 'train.epochs': aliases (*name) are not read in trial files
printf 'method: &m lora\ntrain: {epochs: *m}\n' >t.yaml
petal train "$W/t.yaml" --threads 1
