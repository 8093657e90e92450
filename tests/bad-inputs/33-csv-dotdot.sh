# '..' escaping the corpus root
# exit: 2
# stderr: $W/c/ESC-50/meta/esc50.csv:2: filename '../../../../etc/passwd' leaves the corpus folder
esc_copy c
sed -i '2s|^0.wav|../../../../etc/passwd|' c/ESC-50/meta/esc50.csv
esc_train "$W/c"
