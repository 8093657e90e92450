# a weight of the wrong shape
# exit: 2
# stderr: $W/bb.h5: tensor params/encoder.layer.1.output.dense.weight has shape (10), expected
cp "$FIX/bb.h5" bb.h5
"$H5POKE" bb.h5 resize params/encoder.layer.1.output.dense.weight 10
petal train --synthetic --epochs 1 --threads 1 --backbone "$W/bb.h5"
