# an empty label
# exit: 2
# stderr: $W/c/ESC-50/meta/esc50.csv:3: unknown label target=''
esc_copy c
sed -i '3s/,0,class0,/,,class0,/' c/ESC-50/meta/esc50.csv
esc_train "$W/c"
