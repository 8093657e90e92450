# a step count that does not match epoch and position
# exit: 2
# stderr: $W/ck/fold1.h5: checkpoint field step 99
ck_copy ck
"$H5POKE" ck/fold1.h5 attr step 99
ck_resume "$W/ck"
