# an optimizer moment of the wrong size
# exit: 2
# stderr: $W/ck/fold1.h5: checkpoint tensors missing or of the wrong size
ck_copy ck
"$H5POKE" ck/fold1.h5 resize adam_m 7
ck_resume "$W/ck"
