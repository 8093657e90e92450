# long text settings (a 300-character dataset root, as deep cluster paths are): must work
# (the first trial's values were copied into a 64-byte buffer: a stack overflow, found by fuzz_spec)
# exit: 0
# stdout: 2 trials: lora 2
root=$W/$(printf 'd%.0s' $(seq 300))
printf 'base:\n  dataset: {layout: esc50, root: "%s"}\ngrid:\n  method: [{method: lora, lora.rank: [2, 4]}]\n' "$root" >s.yaml
petal sweep "$W/s.yaml" --dry-run
