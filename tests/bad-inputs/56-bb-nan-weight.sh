# a NaN in a frozen query weight (it vanishes in attention)
# exit: 2
# stderr: $W/bb.h5: tensor params/encoder.layer.0.attention.attention.query.weight holds nan at element 17
cp "$FIX/bb.h5" bb.h5
"$H5POKE" bb.h5 set params/encoder.layer.0.attention.attention.query.weight 17 nan
petal train --synthetic --epochs 1 --threads 1 --backbone "$W/bb.h5"
