# sizes in range that multiply past what the file holds
# exit: 2
# stderr: $W/bb.h5: attributes describe
cp "$FIX/bb.h5" bb.h5
"$H5POKE" bb.h5 attr MLP 200000
"$H5POKE" bb.h5 attr L 1000
petal train --synthetic --epochs 1 --threads 1 --backbone "$W/bb.h5"
