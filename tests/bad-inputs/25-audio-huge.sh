# finite samples x1e30 (the power spectrum overflows)
# exit: 2
# stderr: $W/a.wav: features are not finite
mk wav a.wav --float --n 8000 --value huge
petal data fbank "$W/a.wav"
