# a damaged RIFF header
# exit: 2
# stderr: $W/a.wav: cannot read audio
mk wav full.wav --n 8000
{ printf 'RIFX'; tail -c +5 full.wav; } >a.wav
petal data fbank "$W/a.wav"
