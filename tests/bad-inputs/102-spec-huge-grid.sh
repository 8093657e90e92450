# axes whose product is 10^8 trials: refused at once, before any trial is built
# (10 million trials' settings would take tens of GB)
# exit: 2
# stderr: $W/s.yaml:1:1: the grid expands to 100,000,000 trials (train.seed 100 x train.epochs 100 x train.batch 100 x dataset.shots 100)
python3 - <<'PY'
vals = ", ".join(str(i) for i in range(1, 101))
open("s.yaml", "w").write("grid:\n" + "".join(f"  {k}: [{vals}]\n" for k in
    ["train.seed", "train.epochs", "train.batch", "dataset.shots"]))
PY
start=$(date +%s)
petal sweep "$W/s.yaml" --out "$W/run"
rc=$?
[ $(($(date +%s) - start)) -lt 10 ] || echo 'the refusal took more than 10 s' >&2
[ ! -e run ] || echo 'a store was started' >&2
exit $rc
