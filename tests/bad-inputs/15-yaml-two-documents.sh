# two YAML documents in one trial file
# exit: 2
# stderr: $W/t.yaml:3:1: expected one mapping of settings
printf 'method: lora\n---\nmethod: full\n' >t.yaml
petal train "$W/t.yaml" --threads 1
