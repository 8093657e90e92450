# a method key for a part the method does not have (silently ignored before)
# exit: 2
# stderr: $W/t.yaml:2:17: adapter.kernel: the method (lora) has no adapter
printf 'method: lora\nadapter.kernel: 5\n' >t.yaml
petal train "$W/t.yaml" --threads 1
