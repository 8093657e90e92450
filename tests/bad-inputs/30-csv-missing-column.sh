# a CSV without its label column
# exit: 2
# stderr: $W/c/ESC-50/meta/esc50.csv: missing column 'target'
esc_copy c
sed -i '1s/target/tgt/' c/ESC-50/meta/esc50.csv
esc_train "$W/c"
