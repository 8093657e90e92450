# a key set twice (last-wins would hide the first)
# exit: 2
# stderr: $W/t.yaml:3:1: duplicate key 'train.epochs' (first set at line 1, column 1)
printf 'train.epochs: 1\nmethod: lora\ntrain.epochs: 2\n' >t.yaml
petal train "$W/t.yaml" --threads 1
