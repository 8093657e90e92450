# one clip in two folds (test data leaking into training)
# exit: 2
# stderr: $W/c/ESC-50/meta/esc50.csv:12: audio file $W/c/ESC-50/audio/0.wav is listed again (first at $W/c/ESC-50/meta/esc50.csv:2; folds 1 and 2)
esc_copy c
echo '0.wav,2,0,class0,False,0,A' >>c/ESC-50/meta/esc50.csv
esc_train "$W/c"
