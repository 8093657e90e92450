# a symlink loop in a class folder
# exit: 2
# stderr: $W/c/a/loop.wav: symlink loop
mkdir -p c/a c/b
for d in a b; do for i in 1 2 3; do mk wav c/$d/$i.wav --n 4000; done; done
ln -s loop.wav c/a/loop.wav
petal train --data folder "$W/c" --epochs 1 --threads 1 --set features.frames=16 --set features.mel_bins=32
