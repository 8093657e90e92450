# a checkpoint of other settings
# exit: 2
# stderr: $W/ck/fold1.h5: checkpoint of another trial configuration
ck_copy ck
petal train --synthetic --epochs 3 --threads 1 --out "$W/ck"
