# a zero LayerNorm epsilon
# exit: 2
# stderr: $W/bb.h5: attribute ln_eps
cp "$FIX/bb.h5" bb.h5
"$H5POKE" bb.h5 attr ln_eps 0
petal train --synthetic --epochs 1 --threads 1 --backbone "$W/bb.h5"
