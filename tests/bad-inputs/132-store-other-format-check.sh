# `petal results check` does not rebuild (replace) a store of another format
# exit: 2
# stderr: $W/run/results.h5: a results store of format 'petal-results 2'
store_copy run
"$H5POKE" run/results.h5 attr format 's:petal-results 2'
sum=$(cksum <run/results.h5)
petal results check "$W/run"
rc=$?
[ "$(cksum <run/results.h5)" = "$sum" ] || echo 'results.h5 was changed' >&2
exit $rc
