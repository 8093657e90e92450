# a RUN in use by a running sweep: the second sweep refuses, naming the first one's pid
# exit: 2
# stderr: $W/run is in use by another sweep (pid
printf 'base: {drill: sleep, drill.seconds: 30}\ngrid: {train.seed: [1]}\n' >slow.yaml
"$PETAL" sweep "$W/slow.yaml" --out "$W/run" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s run/lock ] && break; sleep 0.1; done
petal sweep "$W/slow.yaml" --out "$W/run" 2>err
rc=$?
kill -TERM $pid; wait $pid
cat err >&2
grep -q "(pid $pid)" err || { echo "the message does not name pid $pid" >&2; exit 1; }
exit $rc
