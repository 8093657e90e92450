# an --out under a regular file
# exit: 2
# stderr: $W/file/ck: cannot create or write the checkpoint folder
: >file
petal train --synthetic --epochs 1 --threads 1 --out "$W/file/ck"
