# a finished store, then mounted read-only: refused up front (nothing can be recorded)
# exit: 2
# stderr: $W/ro: not writable (Read-only file system)
ro_mount ro "$FIX/store"
store_sweep "$W/ro"
