# a hidden size of 1e9 (must not reach the allocator)
# exit: 2
# stderr: $W/bb.h5: attribute C is 1000000000, expected 1..
cp "$FIX/bb.h5" bb.h5
"$H5POKE" bb.h5 attr C 1000000000
petal train --synthetic --epochs 1 --threads 1 --backbone "$W/bb.h5"
