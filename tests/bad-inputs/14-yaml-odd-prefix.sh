# odd prefix length, refused before any data is read
# exit: 2
# stderr: $W/t.yaml:2:16: prefix.tokens must be even
printf 'method: prefix\nprefix.tokens: 3\n' >t.yaml
petal train "$W/t.yaml" --threads 1
