# a negative epoch
# exit: 2
# stderr: $W/ck/fold1.h5: checkpoint field epoch -1
ck_copy ck
"$H5POKE" ck/fold1.h5 attr epoch -1
ck_resume "$W/ck"
