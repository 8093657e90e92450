# an infinite sample
# exit: 2
# stderr: $W/a.wav: NaN or infinite sample at 4000
mk wav a.wav --float --n 8000 --value inf
petal data fbank "$W/a.wav"
