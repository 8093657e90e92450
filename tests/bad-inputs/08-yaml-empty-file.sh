# an empty trial file must not run a default trial
# exit: 2
# stderr: $W/t.yaml: empty trial file (no settings)
: >t.yaml
petal train "$W/t.yaml" --threads 1
