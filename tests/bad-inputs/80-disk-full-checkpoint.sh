# a checkpoint write that fails: exit 1, not 'diverged', no SIGSEGV in HDF5's exit-time close
# exit: 1
# stderr: cannot write checkpoint
trap '' XFSZ
ulimit -f 8
petal train --synthetic --epochs 1 --threads 1 --out "$W/ck"
rc=$?
[ ! -e "$W/ck/fold1.h5.tmp" ] || echo 'temporary file left behind' >&2
exit $rc
