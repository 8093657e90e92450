# negative shots
# exit: 2
# stderr: $W/t.yaml:1:16: dataset.shots expects an integer in [0,
printf 'dataset.shots: -1\n' >t.yaml
petal train "$W/t.yaml" --threads 1
