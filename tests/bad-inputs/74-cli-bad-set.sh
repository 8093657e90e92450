# --set without '='
# exit: 2
# stderr: --set expects key=value, got 'train.epochs'
petal train --synthetic --set train.epochs
