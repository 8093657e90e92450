# a log-scale integer range with a negative end
# exit: 2
# stderr: $W/s.yaml:2:48: lora.rank: the range [-4, 16] is empty or not positive (log scale)
printf 'grid:\n  method: [{method: lora, lora.rank: {log_int: [-4, 16]}}]\nsample: {n: 4}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
