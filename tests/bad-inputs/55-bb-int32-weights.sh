# int32 weights
# exit: 2
# stderr: $W/bb.h5: tensor params/encoder.layer.0.attention.attention.query.weight is not floating point
cp "$FIX/bb.h5" bb.h5
"$H5POKE" bb.h5 retype params/encoder.layer.0.attention.attention.query.weight
petal train --synthetic --epochs 1 --threads 1 --backbone "$W/bb.h5"
