# a NaN sample in a float WAV
# exit: 2
# stderr: $W/a.wav: NaN or infinite sample at 4000
mk wav a.wav --float --n 8000 --value nan
petal data fbank "$W/a.wav"
