# a zero-byte checkpoint
# exit: 2
# stderr: $W/ck/fold1.h5: not a readable checkpoint
mkdir ck && : >ck/fold1.h5
ck_resume "$W/ck"
