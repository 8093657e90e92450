# a store written by petal 0.3 (HDF5 trial records, record.h5): refused, not silently rerun
# exit: 2
# stderr: $W/run: a store of petal 0.3 (trial records in HDF5): finish it with that version, or start a new RUN
store_copy run
for r in run/trials/*/record.bin; do mv "$r" "${r%.bin}.h5"; done
store_sweep "$W/run"
