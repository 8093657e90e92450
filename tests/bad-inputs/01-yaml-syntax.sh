# an unclosed flow mapping
# exit: 2
# stderr: $W/t.yaml:2:
printf 'train: {epochs: 1\nmethod: lora\n' >t.yaml
petal train "$W/t.yaml" --threads 1
