# --out names a folder that is not a sweep's and holds someone's results.h5: not replaced
# exit: 2
# stderr: $W/mine/results.h5: not an HDF5 file, and $W/mine is not a petal store: petal will not replace it
mkdir mine
echo 'important numbers' >mine/results.h5
store_sweep "$W/mine"
rc=$?
[ "$(cat mine/results.h5)" = 'important numbers' ] || echo 'results.h5 was replaced' >&2
exit $rc
