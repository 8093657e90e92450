# `method:` twice in a grid (libyaml keeps both: the second list overran the
# first's entries, a heap overflow found by fuzz_spec)
# exit: 2
# stderr: $W/s.yaml:4:3: method is given twice
printf 'grid:\n  method: [lora]\n  train.seed: [1, 2]\n  method: [full, {method: adapter_pfeiffer, adapter.dim: [4, 8]}]\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
