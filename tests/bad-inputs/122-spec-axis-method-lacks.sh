# a grid axis that one of the methods does not have (linear probing has no LoRA rank)
# exit: 2
# stderr: lora.rank: the method (linear) has no LoRA
printf 'grid:\n  method: [lora, linear]\n  lora.rank: [4, 8]\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
