# one axis with 200,000 listed values
# exit: 2
# stderr: $W/s.yaml:2:15: train.seed: an axis of 200000 values, more than the 100000 trials one sweep takes
python3 -c 'open("s.yaml", "w").write("grid:\n  train.seed: [" + ", ".join(str(i) for i in range(1, 200001)) + "]\n")'
petal sweep "$W/s.yaml" --dry-run
