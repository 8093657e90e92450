# --out under a regular file
# exit: 2
# stderr: $W/file/run: cannot create the sweep's folder ($W/file is not a folder)
: >file
store_sweep "$W/file/run"
