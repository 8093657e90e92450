# an order index outside the training set
# exit: 2
# stderr: $W/ck/fold1.h5: checkpoint field order[5] = 1000000 is not a permutation
ck_copy ck
"$H5POKE" ck/fold1.h5 set order 5 1000000
ck_resume "$W/ck"
