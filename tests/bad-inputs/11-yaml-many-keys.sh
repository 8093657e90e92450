# 600000 keys: must be read in linear time (timeout 50 s; a linear search per key makes 1.8e11 comparisons)
# exit: 2
# stderr: $W/t.yaml:1:1: unknown setting 'k0'
awk 'BEGIN { for (i = 0; i < 600000; i++) printf "k%d: 1\n", i }' >t.yaml
timeout 50 "$PETAL" train "$W/t.yaml" --threads 1
