# a method entry with a key of another method
# exit: 2
# stderr: $W/s.yaml:3:46: lora.rank: the method (adapter_pfeiffer) has no LoRA
printf 'grid:\n  method:\n    - {method: adapter_pfeiffer, lora.rank: [4, 8]}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
