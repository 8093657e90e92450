# listing a results.h5 of another format
# exit: 2
# stderr: $W/run/results.h5: a results store of format 'petal-results 2' (this petal reads 'petal-results 1')
store_copy run
"$H5POKE" run/results.h5 attr format 's:petal-results 2'
petal results ls "$W/run"
