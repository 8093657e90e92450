# a truncated results.h5: named, with the command that rebuilds it
# exit: 2
# stderr: $W/run/results.h5: not an HDF5 file (truncated or damaged; petal results check rebuilds it)
store_copy run
head -c 2000 run/results.h5 >x && mv x run/results.h5
petal results ls "$W/run"
