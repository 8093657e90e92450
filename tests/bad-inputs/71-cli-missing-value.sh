# a flag without its value
# exit: 2
# stderr: --epochs
petal train --synthetic --epochs
