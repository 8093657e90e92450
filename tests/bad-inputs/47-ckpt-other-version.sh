# a checkpoint of another format version
# exit: 2
# stderr: $W/ck/fold1.h5: not a petal checkpoint
ck_copy ck
"$H5POKE" ck/fold1.h5 attr format 's:petal-checkpoint 2'
ck_resume "$W/ck"
