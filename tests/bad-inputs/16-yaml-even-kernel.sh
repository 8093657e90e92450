# an even Conformer kernel
# exit: 2
# stderr: $W/t.yaml:2:17: adapter.kernel must be odd
printf 'method: conformer\nadapter.kernel: 4\n' >t.yaml
petal train "$W/t.yaml" --threads 1
