# 200000 nested flow mappings (stack overflow in a recursive reader)
# exit: 2
# stderr: $W/t.yaml:1:
python3 -c "print('a: ' + '{a: ' * 200000 + '1' + '}' * 200000)" >t.yaml
petal train "$W/t.yaml" --threads 1
