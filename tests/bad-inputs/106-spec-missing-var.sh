# ${VAR} that the environment does not set
# exit: 2
# stderr: $W/s.yaml:2:19: ${PETAL_BAD_INPUT_UNSET} is not set in the environment
printf 'base:\n  dataset: {root: "${PETAL_BAD_INPUT_UNSET}/esc", layout: esc50}\ngrid:\n  train.seed: [1]\n' >s.yaml
unset PETAL_BAD_INPUT_UNSET
petal sweep "$W/s.yaml" --dry-run
