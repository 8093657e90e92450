# an include naming a setting that does not exist
# exit: 2
# stderr: $W/s.yaml:4:20: unknown setting 'train.seeed' (did you mean train.seed?)
printf 'grid:\n  train.seed: [1]\ninclude:\n  - {method: lora, train.seeed: 3}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
