# an empty key (found by fuzz_config: its identity text did not read back)
# exit: 2
# stderr: $W/t.yaml:2:1: empty key
printf 'method: lora\n"": 1\n' >t.yaml
petal train "$W/t.yaml" --threads 1
