# an exclude rule that matches no trial (a value the axis does not have: a typo)
# exit: 2
# stderr: $W/s.yaml:4:5: exclude[0] matches no trial of the grid
printf 'grid:\n  dataset.shots: [4, 8, 16]\nexclude:\n  - {dataset.shots: 5}\n' >s.yaml
petal sweep "$W/s.yaml" --dry-run
