# an exclude rule naming a setting that does not exist
# exit: 2
# stderr: $W/s.yaml:5:5: unknown setting 'lora.rnak' (did you mean lora.rank?)
printf 'grid:\n  method: [{method: lora, lora.rank: [2, 4]}]\nexclude:\n  -\n    lora.rnak: 4\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
