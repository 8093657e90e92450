# a class count of 4e9 (must not reach the allocator)
# exit: 2
# stderr: $W/ck/fold1.h5: not a petal checkpoint
ck_copy ck
"$H5POKE" ck/fold1.h5 attr K 4000000000
mk wav a.wav --n 8000
petal predict --checkpoint "$W/ck/fold1.h5" a.wav
