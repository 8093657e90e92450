# RUN holds a results.h5 of another format (a newer petal's store): refused, left as it is
# exit: 2
# stderr: $W/run/results.h5: a results store of format 'petal-results 2' (this petal writes 'petal-results 1')
store_copy run
"$H5POKE" run/results.h5 attr format 's:petal-results 2'
sum=$(cksum <run/results.h5)
store_sweep "$W/run"
rc=$?
[ "$(cksum <run/results.h5)" = "$sum" ] || echo 'results.h5 was changed' >&2
exit $rc
