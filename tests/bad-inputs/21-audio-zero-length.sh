# a zero-byte .wav
# exit: 2
# stderr: $W/a.wav: cannot read audio
: >a.wav
petal data fbank "$W/a.wav"
