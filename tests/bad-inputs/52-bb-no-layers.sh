# L = 0: no encoder at all
# exit: 2
# stderr: $W/bb.h5: attribute L is 0, expected 1..
cp "$FIX/bb.h5" bb.h5
"$H5POKE" bb.h5 attr L 0
petal train --synthetic --epochs 1 --threads 1 --backbone "$W/bb.h5"
