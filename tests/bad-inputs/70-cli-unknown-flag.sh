# an unknown flag
# exit: 2
# stderr: --epoch
petal train --synthetic --epoch 3
