# a truncated results.h5 in a store: rebuilt from the trial records (the truth), said so
# exit: 0
# stderr: $W/run/results.h5: not an HDF5 file (truncated or damaged); rebuilt from the trial records
store_copy run
head -c 2000 run/results.h5 >x && mv x run/results.h5
store_sweep "$W/run" || exit
petal results ls "$W/run" | grep -c ' done ' | grep -qx 2 || { echo 'the rebuilt store does not list both trials' >&2; exit 1; }
