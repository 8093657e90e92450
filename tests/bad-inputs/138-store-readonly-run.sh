# RUN on a read-only file system: refused up front, naming it
# exit: 2
# stderr: $W/ro: not writable (Read-only file system)
ro_mount ro
store_sweep "$W/ro"
