# --out names a regular file
# exit: 2
# stderr: $W/run: not a folder (--out names the folder of the sweep's store)
echo 'my notes' >run
store_sweep "$W/run"
rc=$?
[ "$(cat run)" = 'my notes' ] || echo 'the file was changed' >&2
exit $rc
