# a truncated checkpoint
# exit: 2
# stderr: $W/ck/fold1.h5: not a readable checkpoint
ck_copy ck
head -c 3000 ck/fold1.h5 >x && mv x ck/fold1.h5
ck_resume "$W/ck"
