# 8 channels: valid, mixed down to mono (must work)
# exit: 0
# stdout: audio rate=16000 samples=8000
mk wav a.wav --ch 8 --n 8000
petal data fbank "$W/a.wav"
