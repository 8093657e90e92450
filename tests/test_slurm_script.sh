#!/usr/bin/env bash
# `petal slurm` scripts and `petal status` without a SLURM (tests/test_slurm.sh
# runs them on a real one): usage errors exit 2 naming the flag; hostile spec
# paths, RUN paths, study names and flag values stay data (the script is run
# outside SLURM, in one process, and nothing it was given gets executed);
# status counts done / running / failed / left while a sweep runs.
cd "$(dirname "$0")/.."
P=$PWD/petal
T=$(mktemp -d /tmp/petal_test_slurm_script_XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
cd "$T"
cat >s.yaml <<'EOF'
study: script
base: {drill: noop}
grid: {train.seed: [1, 2, 3]}
EOF

# ---- usage errors: exit 2 and the flag or file ------------------------------------
usage_err() { # expected-fragment args...
  local want=$1; shift
  $P slurm "$@" >out 2>err; local rc=$?
  if [ $rc = 2 ] && grep -qF -- "$want" err; then ok; else bad "petal slurm $*: rc $rc, want 2 and '$want': $(cat err)"; fi
}
usage_err "a spec file is required" --out r
usage_err "--out RUN is required" s.yaml
usage_err "nope.yaml" nope.yaml --out r
printf 'grid:\n  train.sed: [1]\n' >typo.yaml
usage_err "typo.yaml:2:3: unknown setting 'train.sed'" typo.yaml --out r
usage_err "--partition: control characters" s.yaml --out r --partition $'a\ntouch x'
usage_err "--time: empty value" s.yaml --out r --time ''
usage_err "--sbatch expects an sbatch option" s.yaml --out r --sbatch 'touch x'
usage_err "--sbatch: control characters" s.yaml --out r --sbatch $'--comment=a\nb'
usage_err "--nodes expects an integer" s.yaml --out r --nodes 0
usage_err "--signal-secs expects an integer" s.yaml --out r --signal-secs 70000
usage_err "--array runs one process per array task" s.yaml --out r --array --nodes 2
usage_err "--throttle limits array tasks" s.yaml --out r --throttle 3
usage_err "unknown option '--bogus'" s.yaml --out r --bogus
usage_err "cannot hold a backslash" s.yaml --out 'r\x'
usage_err "--sbatch expects an sbatch option" s.yaml --out r --sbatch '--a;b=1'

PATH=/nonexistent $P slurm s.yaml --out r --submit >out 2>err; rc=$?
check '[ $rc = 1 ] && grep -q "sbatch .* failed" err' "--submit without sbatch: exit 1: rc $rc $(cat err)"

# ---- hostile values stay data -------------------------------------------------------
evil='x $(touch '"$T"'/pwned1) `touch '"$T"'/pwned2` "q" '"'"'s'"'"' ; touch '"$T"'/pwned3 #%j'
mkdir -p "$T/spec $evil"
cat >"$T/spec $evil/s.yaml" <<EOF
study: "a'; touch $T/pwned4 # \$(touch $T/pwned5)"
base: {drill: noop}
grid: {train.seed: [1, 2]}
EOF
$P slurm "$T/spec $evil/s.yaml" --out "$T/run $evil" --ntasks-per-node 1 \
  --partition "p\"; touch $T/pwned6 #" --account '$(touch '"$T"'/pwned7)' --qos "q'\\" \
  --sbatch '--comment=$(touch '"$T"'/pwned8)' --script job.sh 2>err; rc=$?
check '[ $rc = 0 ] && bash -n job.sh' "a script from hostile values: rc $rc $(cat err)"
check 'grep -qxF "#SBATCH --partition=\"p\\\"; touch $T/pwned6 #\"" job.sh && grep -qxF "#SBATCH --qos=\"q'"'"'\\\\\"" job.sh' \
  "#SBATCH values in sbatch's double quotes: $(grep -E 'partition|qos' job.sh)"
check 'grep -qF -- "--output=\"$T/run x \$(touch" job.sh && grep -qF "#%%j/slurm-%j.out\"" job.sh' \
  "--output: % doubled, quotes escaped, %j kept: $(grep output= job.sh)"
check 'grep -q "^#SBATCH --job-name=\"petal-a___touch__tmp_" job.sh' "job name made of safe characters: $(grep job-name job.sh)"
env -u SLURM_JOB_ID bash job.sh >out 2>&1; rc=$?
check '[ $rc = 0 ] && [ -f "$T/run $evil/results.h5" ] && grep -q "2 done, 0 failed" out' \
  "the script runs outside SLURM on the hostile paths: rc $rc $(tail -3 out)"
check '! ls "$T"/pwned* >/dev/null 2>&1' "nothing injected ran: $(ls "$T"/pwned* 2>&1)"
check 'grep -q "^none - start " "$T/run $evil/slurm-jobs" && grep -q "^none - exit=0 " "$T/run $evil/slurm-jobs"' \
  "the script records its start and exit in RUN/slurm-jobs: $(cat "$T/run $evil/slurm-jobs")"
$P slurm s.yaml --out arr --array --throttle 2 >arr.sh
check 'grep -q "^#SBATCH --array=0-2%2$" arr.sh && grep -q -- "--shard \"\$SLURM_ARRAY_TASK_ID/\$shards\"" arr.sh && bash -n arr.sh' \
  "array script: $(grep -E 'array=|--shard' arr.sh)"
$P slurm s.yaml --out mpi --nodes 2 --ntasks-per-node 4 --cpus-per-task 8 --mem 16G --time 1:00:00 >mpi.sh
check 'grep -q "^#SBATCH --nodes=2$" mpi.sh && grep -q "^#SBATCH --ntasks-per-node=4$" mpi.sh && grep -q "^#SBATCH --cpus-per-task=8$" mpi.sh && grep -q "^#SBATCH --signal=B:USR1@120$" mpi.sh && grep -q "^#SBATCH --requeue$" mpi.sh && grep -q "srun --mpi=pmix" mpi.sh && grep -q "mpirun -n" mpi.sh' \
  "MPI script directives and launchers"

# ---- the trap: TERM to the script -> petal checkpoints, the script exits 75 --------
# (outside SLURM there is no job to requeue; tests/test_slurm.sh requeues for real)
cat >slow.yaml <<'EOF'
base: {drill: curve, drill.seconds: 0.3, train.epochs: 30}
grid: {train.seed: [1, 2]}
EOF
$P slurm slow.yaml --out slow --ntasks-per-node 1 --script slow.sh 2>/dev/null
env -u SLURM_JOB_ID bash slow.sh >out 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "fold 1 epoch 2 " slow/trials/*/log.txt 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid; wait $pid; rc=$?
check '[ $rc = 75 ] && grep -q "SIGTERM: asking petal to checkpoint" out && grep -q "stopped .*checkpointed" out && grep -q "petal exited 75" out' \
  "TERM to the batch script reaches petal through the trap (rc $rc): $(cat out)"
check 'grep -q "^none - exit=75 " slow/slurm-jobs' "the script logs its exit: $(cat slow/slurm-jobs)"

# ---- petal status -------------------------------------------------------------------
$P status nowhere >out 2>err; rc=$?
check '[ $rc = 2 ] && grep -q "nowhere: not a sweep" err' "status of a non-run: rc $rc $(cat err)"
cat >st.yaml <<'EOF'
study: st
base: {drill: noop}
grid: {train.seed: [1, 2, 3]}
include:
  - {drill: abort}
EOF
$P sweep st.yaml --out st --max-attempts 1 >/dev/null 2>&1
printf '  - {drill: sleep, drill.seconds: 4}\n' >>st.yaml  # one more trial; the others keep their ids
$P sweep st.yaml --out st >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do $P status st >out 2>&1; grep -q "1 running" out && break; sleep 0.1; done
check 'grep -q "5 trials: 3 done, 1 running, 1 failed, 0 left" out' "status while the sweep runs: $(cat out)"
kill -USR1 $pid; wait $pid; rc=$?
$P status st >out 2>&1
check '[ $rc = 75 ] && grep -q "3 done, 0 running, 1 failed, 1 left (1 checkpointed)" out && grep -q "no jobs recorded" out' \
  "status after a stop: rc $rc $(cat out)"
check '[ "$($P status st --left)" = 1 ]' "--left prints the number left"
n=0; for k in 0 1 2; do n=$((n + $($P status st --left --shard $k/3))); done
check '[ $n = 1 ]' "--left over the shards adds up: $n"

echo "slurm script: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
