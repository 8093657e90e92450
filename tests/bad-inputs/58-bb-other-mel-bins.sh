# a backbone of other settings (mel bins)
# exit: 2
# stderr: $W/bb.h5: backbone has 32 mel bins, the trial 64
cp "$FIX/bb.h5" bb.h5
petal train --synthetic --epochs 1 --threads 1 --backbone "$W/bb.h5" --set features.mel_bins=64
