# a huge clip in a corpus: the trial names it, nothing is cached
# exit: 2
# stderr: $W/c/ESC-50/audio/3.wav: features are not finite
esc_copy c
mk wav c/ESC-50/audio/3.wav --float --n 4000 --value huge
esc_train "$W/c"
rc=$?
! ls c/.petal-cache/fbank-*.h5 c/.petal-cache/*.tmp.* >/dev/null 2>&1 || echo 'features of the bad clip were cached' >&2
exit $rc
