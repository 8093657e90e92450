# a negative position (heap overflow in the step)
# exit: 2
# stderr: $W/ck/fold1.h5: checkpoint field pos -64
ck_copy ck
"$H5POKE" ck/fold1.h5 attr pos -64
ck_resume "$W/ck"
