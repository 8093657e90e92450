# a row with too few fields (the count must not read 0)
# exit: 2
# stderr: $W/c/ESC-50/meta/esc50.csv:4: 3 fields, the header has 7
esc_copy c
sed -i '4s/.*/2.wav,3,0/' c/ESC-50/meta/esc50.csv
esc_train "$W/c"
