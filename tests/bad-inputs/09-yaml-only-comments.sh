# comments only
# exit: 2
# stderr: $W/t.yaml: empty trial file (no settings)
printf '# nothing here\n' >t.yaml
petal train "$W/t.yaml" --threads 1
