# a zero-byte backbone
# exit: 2
# stderr: $W/bb.h5: cannot open as HDF5
: >bb.h5
petal train --synthetic --epochs 1 --threads 1 --backbone "$W/bb.h5"
