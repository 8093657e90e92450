# an HF import whose write fails
# exit: 1
# stderr: $W/out.h5.tmp
trap '' XFSZ
ulimit -f 64
petal model import --hf "$HF" --out "$W/out.h5"
