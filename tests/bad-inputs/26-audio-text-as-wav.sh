# a text file named .wav
# exit: 2
# stderr: $W/a.wav: cannot read audio
echo 'this is not audio' >a.wav
petal data fbank "$W/a.wav"
