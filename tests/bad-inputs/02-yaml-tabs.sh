# a tab used for indentation
# exit: 2
# stderr: $W/t.yaml:2:
printf 'train:\n\tepochs: 1\n' >t.yaml
petal train "$W/t.yaml" --threads 1
