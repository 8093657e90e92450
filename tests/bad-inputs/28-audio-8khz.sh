# 8 kHz: valid, resampled to 16 kHz (must work)
# exit: 0
# stdout: audio rate=8000 samples=4000 seconds=0.500 -> 16000 Hz samples=8000
mk wav a.wav --rate 8000 --n 4000
petal data fbank "$W/a.wav"
