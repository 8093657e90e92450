# a backbone write that fails (model init / import)
# exit: 1
# stderr: $W/bb.h5.tmp
trap '' XFSZ
ulimit -f 64
petal model init --size tiny --out "$W/bb.h5"
