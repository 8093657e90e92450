# a clip that is a symlink to itself
# exit: 2
# stderr: $W/c/ESC-50/meta/esc50.csv:2: audio file $W/c/ESC-50/audio/0.wav a symlink loop
esc_copy c
rm c/ESC-50/audio/0.wav
ln -s 0.wav c/ESC-50/audio/0.wav
esc_train "$W/c"
