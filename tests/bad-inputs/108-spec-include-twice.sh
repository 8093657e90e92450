# an include that repeats a grid trial
# exit: 2
# stderr: $W/s.yaml:5:5: this trial (include[0]) comes out twice: the grid entry lora gives the same settings
printf 'grid:\n  method: [lora]\n  train.seed: [1, 2]\ninclude:\n  - {method: lora, train.seed: 2}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
