# a WAV cut short
# exit: 2
# stderr: $W/a.wav: truncated
mk wav full.wav --n 8000
head -c 4000 full.wav >a.wav
petal data fbank "$W/a.wav"
