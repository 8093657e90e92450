#!/usr/bin/env bash
# Search beyond grids (issue 16): sampled ranges (values inside their ranges,
# seeds, stable ids, growing n keeps points, Sobol's stratification, errors
# naming file:line:column) and early stopping decided by the coordinator:
# ASHA and the median rule on scripted curves (drill: curve) reproduce the
# decisions a textbook simulation computes from the full grid's curves; on a
# real tiny sweep a trial paused and promoted ends bit for bit as the same
# trial run without pausing; kill -9 during an ASHA sweep then a rerun gives
# the uninterrupted sweep's decisions and store; over MPI the final decisions
# hold ASHA's invariant.
source "$(dirname "$0")/sweep_lib.sh" asha
S=$'\nsample: {n: 2}'
spec_err notpos "notpos.yaml:2:19: train.lr: the range [0, 0.01] is empty or not positive (log scale)" $'grid:\n  train.lr: {log: [0, 1e-2]}'"$S"
spec_err emptyr "emptyr.yaml:2:20: lora.rank: the range [8, 2] is empty" $'grid:\n  lora.rank: {int: [8, 2]}\n  method: [lora]'"$S"
spec_err onebound "onebound.yaml:2:20: lora.rank: int takes [low, high]" $'grid:\n  lora.rank: {int: [8]}'"$S"
spec_err notlist "notlist.yaml:2:19: train.lr: log takes a list" $'grid:\n  train.lr: {log: 5}'"$S"
spec_err bound "bound.yaml:2:26: train.lr: log bounds must be numbers, got 'a'" $'grid:\n  train.lr: {log: [1e-4, a]}'"$S"
spec_err intfloat "intfloat.yaml:2:19: train.lr is not an integer: use num or log" $'grid:\n  train.lr: {int: [1, 2]}'"$S"
spec_err floatint "floatint.yaml:2:20: lora.rank is an integer: use int or log_int" $'grid:\n  lora.rank: {num: [1, 2]}'"$S"
spec_err text "text.yaml:2:25: dataset.layout is not a number: sample it with {choice: [...]}" $'grid:\n  dataset.layout: {num: [1, 2]}'"$S"
spec_err choice "choice.yaml:2:31: prompt.tokens expects an integer in [0, 4096], got 'x'" $'grid:\n  prompt.tokens: {choice: [4, x]}'"$S"
spec_err outside "outside.yaml:2:24: train.epochs expects an integer in [1, 100000], got '0'" $'grid:\n  train.epochs: {int: [0, 5]}'"$S"
spec_err inbase "inbase.yaml:2:13: train.lr: a range here? ranges go under grid: (with sample:)" $'base:\n  train.lr: {log: [1e-4, 1e-2]}\ngrid:\n  train.seed: [1]'
spec_err inexclude "inexclude.yaml:4:6: exclude takes values, not ranges" $'grid:\n  train.lr: {log: [1e-4, 1e-2]}\nexclude:\n  - {train.lr: {num: [1, 2]}}'"$S"
spec_err nosample "nosample.yaml:2:3: train.lr is a range: add \`sample: {n: N}\`" $'grid:\n  train.lr: {log: [1e-4, 1e-2]}'
spec_err n0 "n0.yaml:3:13: sample.n expects an integer in [1, 100000], got '0'" $'grid:\n  train.lr: {log: [1e-4, 1e-2]}\nsample: {n: 0}'
spec_err kind "kind.yaml:3:22: sample.kind expects random or sobol, got 'halton'" $'grid:\n  train.lr: {log: [1e-4, 1e-2]}\nsample: {n: 2, kind: halton}'
spec_err ekind "ekind.yaml:3:10: early_stop.kind expects asha or median, got 'hyperband'" $'grid: {train.seed: [1]}\nearly_stop:\n  {kind: hyperband}'
spec_err eta "eta.yaml:2:19: early_stop.eta expects an integer in [2, 100], got '1'" $'grid: {train.seed: [1]}\nearly_stop: {eta: 1}'
spec_err metric "metric.yaml:2:22: early_stop.metric expects valid_acc, got 'test_acc'" $'grid: {train.seed: [1]}\nearly_stop: {metric: test_acc}'

# ---- sampled values, seeds, stable ids, growth ---------------------------------------
sampled() { # n seed kind [reordered] -> dry-run lines
  if [ -z "$4" ]; then cat <<EOF
base: {drill: noop}
grid:
  train.seed: [1, 2]
  train.lr: {log: [1e-4, 1e-2]}
  method:
    - {method: lora, lora.rank: {log_int: [2, 16]}}
    - {method: adapter_pfeiffer, adapter.dim: {int: [4, 32]}}
    - {method: prompt_deep, prompt.tokens: {choice: [4, 8, 16]}}
sample: {n: $1, seed: $2, kind: $3}
EOF
  else cat <<EOF
sample: {kind: $3, seed: $2, n: $1}
grid:
  method:
    - {method: prompt_deep, prompt.tokens: {choice: [4, 8, 16]}}
    - {method: adapter_pfeiffer, adapter.dim: {int: [4, 32]}}
    - {method: lora, lora.rank: {log_int: [2, 16]}}
  train.lr: {log: [1e-4, 1e-2]}
  train.seed: [2, 1]
base: {drill: noop}
EOF
  fi >"$T/smp.yaml"
  $P sweep "$T/smp.yaml" --dry-run | grep -E '^[0-9a-f]{16} '
}
for kind in random sobol; do
  sampled 30 1 $kind >"$T/a30"; sampled 30 1 $kind >"$T/b30"; sampled 7 1 $kind >"$T/a7"
  sampled 30 2 $kind >"$T/s2"; sampled 30 1 $kind x >"$T/r30"
  $PY - "$T/a30" <<'EOF' 2>"$T/err"
import sys, collections
rows = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1])]
per = collections.Counter(r["method"] for r in rows)
assert per == {"lora": 60, "adapter_pfeiffer": 60, "prompt_deep": 60}, per  # n points x the seed list
pts = collections.defaultdict(set)
for r in rows:
    lr = float(r["train.lr"]); assert 1e-4 <= lr <= 1e-2, r
    m = r["method"]
    if m == "lora": v = int(r["lora.rank"]); assert 2 <= v <= 16 and r["lora.rank"] == str(v), r
    if m == "adapter_pfeiffer": v = int(r["adapter.dim"]); assert 4 <= v <= 32, r
    if m == "prompt_deep": v = int(r["prompt.tokens"]); assert v in (4, 8, 16), r
    pts[(m, r["train.seed"])].add((r["train.lr"], v))
    assert r["lora.rank"] == "-" or m == "lora"
for (m, seed), p in pts.items():
    assert len(p) == 30, (m, seed, len(p))  # n distinct points per entry
    assert p == pts[(m, "2" if seed == "1" else "1")]  # the list axis is a grid over the points
# log scales: about as many lr draws below 1e-3 as above
lo = sum(float(r["train.lr"]) < 1e-3 for r in rows); assert 45 <= lo <= 135, lo
EOF
  py=$?  # before the message's \$(...) runs
  check '[ $py = 0 ]' "$kind: values in their ranges, n distinct points per entry, list axes a grid: $(tail -2 "$T/err")"
  check 'cmp -s "$T/a30" "$T/b30"' "$kind: the same seed gives the same trials"
  check '[ -z "$(comm -23 <(cut -d" " -f1 "$T/a7" | sort) <(cut -d" " -f1 "$T/a30" | sort))" ] && [ $(wc -l <"$T/a7") = 42 ]' \
    "$kind: growing n from 7 to 30 keeps the first 7 points (ids)"
  check '[ "$(cut -d" " -f1 "$T/a30" | sort)" = "$(cut -d" " -f1 "$T/r30" | sort)" ]' \
    "$kind: reordered entries, axes and sections keep every id"
  check '[ $(comm -12 <(cut -d" " -f1 "$T/a30" | sort) <(cut -d" " -f1 "$T/s2" | sort) | wc -l) -lt 10 ]' \
    "$kind: another seed draws other points"
done
# Sobol (seed 0, the plain sequence): GSL's sequence leaves out the origin, so
# its first 2^m - 1 points fill every stratum of 2^m but the first, one each
cat >"$T/sob.yaml" <<'EOF'
base: {drill: noop}
grid:
  train.weight_decay: {num: [0, 1]}
sample: {n: 15, seed: 0, kind: sobol}
EOF
$P sweep "$T/sob.yaml" --dry-run | grep -oE 'train.weight_decay=[0-9.e-]+' | cut -d= -f2 >"$T/sob"
$PY -c "
v = [float(x) for x in open('$T/sob')]
assert len(v) == 15 and sorted(int(x * 16) for x in v) == list(range(1, 16)), v" 2>"$T/err"
py=$?  # before the message's \$(...) runs
check '[ $py = 0 ]' "sobol: 15 points, one per sixteenth but the first: $(tr '\n' ' ' <"$T/sob") $(tail -1 "$T/err")"
# a choice with fewer values than n gives each value once (no "comes out twice")
printf 'base: {drill: noop}\ngrid:\n  prompt.tokens: {choice: [4, 8, 16]}\n  method: [prompt_deep]\nsample: {n: 10}\n' >"$T/few.yaml"
$P sweep "$T/few.yaml" --dry-run >"$T/out" 2>&1; rc=$?
check '[ $rc = 0 ] && grep -q "^3 trials" "$T/out"' "a range with 3 values and n 10 gives 3 trials (rc $rc): $(tail -1 "$T/out")"

# ---- ASHA and the median rule on scripted curves -----------------------------------
drills() { # early_stop line -> spec on stdout
  cat <<EOF
study: drills
base: {drill: curve, drill.seconds: ${SECS:-0}, train.epochs: 27}
grid:
  train.seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27]
$1
EOF
}
drills "" >"$T/grid.yaml"
drills "early_stop: {kind: asha, metric: valid_acc, min_epochs: 1, eta: 3}" >"$T/asha.yaml"
drills "early_stop: {kind: median, min_epochs: 1, eta: 3}" >"$T/median.yaml"
$P sweep "$T/grid.yaml" --out "$T/grid" >/dev/null 2>&1
$P sweep "$T/asha.yaml" --dry-run | grep -E '^[0-9a-f]{16} ' | cut -d' ' -f1 >"$T/order"
$P sweep "$T/asha.yaml" --out "$T/asha" >"$T/asha.out" 2>&1; rc=$?
$P sweep "$T/median.yaml" --out "$T/median" >"$T/median.out" 2>&1; rc2=$?
# The textbook: one worker, trials in spec order (equal costs), promoted trials
# first; a trial stopping at rung r is promoted when in the top floor(n/eta) of
# every result at r so far (ties by id), else paused, and paused trials are
# promoted once a later result puts them in that top. Median: stop at r when
# below the median of the finished trials' valid_acc at r.
cat >"$T/sim.py" <<'EOF'
import sys, h5py, statistics
kind, grid, run, order = sys.argv[1], sys.argv[2], sys.argv[3], open(sys.argv[4]).read().split()
R, m0, eta = 27, 1, 3
curve = {}
for h in h5py.File(grid + "/results.h5")["/history"][()]:
    curve.setdefault(h["id"].decode(), {})[int(h["epoch"])] = h["valid_acc"]
rungs = []
r = m0
while r < R: rungs.append(r); r *= eta
after = lambda e: next((r for r in rungs if r > e), R)
ep = {i: 0 for i in order}; st = {i: "pending" for i in order}
new, cont = list(order), []
def top(i, r):
    rs = sorted((i2 for i2 in order if ep[i2] >= r), key=lambda i2: (-curve[i2][r], i2))
    return i in rs[: len(rs) // eta]
while new or cont:
    i = cont.pop(0) if cont else new.pop(0)
    ep[i] = after(ep[i])
    if ep[i] == R: st[i] = "done"; continue
    r = ep[i]
    if kind == "asha":
        st[i] = "promoted" if top(i, r) else "paused"
        for j in order:
            if st[j] == "paused" and top(j, ep[j]): st[j] = "promoted"
    else:
        fin = [curve[j][r] for j in order if st[j] == "done"]
        st[i] = "stopped" if fin and curve[i][r] < statistics.median(fin) else "promoted"
    cont += [j for j in order if st[j] == "promoted"]  # spec order, as the coordinator scans
    for j in order:
        if st[j] == "promoted": st[j] = "queued"
want = {i: ({"done": "done", "paused": "paused", "stopped": "paused"}[st[i]], ep[i]) for i in order}
t = h5py.File(run + "/results.h5")["/trials"][()]
got = {r["id"].decode(): (r["status"].decode(), int(r["epochs"])) for r in t}
spent = sum(e for _, e in got.values())
g = {r["id"].decode(): r for r in h5py.File(grid + "/results.h5")["/trials"][()]}
best = max(r["best_valid_acc"] for r in t if r["status"] == b"done")
bad = [(i, want[i], got[i]) for i in order if want[i] != got[i]]
same = all(r["best_valid_acc"].tobytes() == g[r["id"].decode()]["best_valid_acc"].tobytes() for r in t if r["status"] == b"done")
print("%s: %d trials, %d done, %d epochs of %d, best valid %.4f (grid %.4f), %d differ from the simulation %s"
      % (kind, len(order), sum(s == "done" for s, _ in got.values()), spent, R * len(order), best,
         max(r["best_valid_acc"] for r in g.values()), len(bad), bad[:3]))
assert not bad and same and 0 < spent < R * len(order)
assert sum(s == "paused" for s, _ in got.values()) > 0
EOF
$PY "$T/sim.py" asha "$T/grid" "$T/asha" "$T/order" >"$T/sim.out" 2>&1
py=$?  # before the message's \$(...) runs
check '[ $py = 0 ] && [ $rc = 0 ]' "ASHA = the textbook (rc $rc): $(tail -2 "$T/sim.out")"
check 'grep -q "promoted from its pause" "$T/asha.out"' "a paused trial was promoted later when its rung filled"
$PY "$T/sim.py" median "$T/grid" "$T/median" "$T/order" >"$T/sim.out" 2>&1
py=$?  # before the message's \$(...) runs
check '[ $py = 0 ] && [ $rc2 = 0 ]' "median rule = the textbook (rc $rc2): $(tail -2 "$T/sim.out")"
# the store's record of the decisions
$PY - "$T/asha" <<'EOF' 2>"$T/err"
import sys, h5py
f = h5py.File(sys.argv[1] + "/results.h5"); t = f["/trials"][()]
assert f.attrs["early_stop"] == b"asha min_epochs=1 eta=3", f.attrs["early_stop"]
assert f.attrs["epochs_spent"] == sum(int(r["epochs"]) for r in t)
for r in t:
    if r["status"] == b"paused":
        assert r["decision"] == b"paused" and r["epochs_budget"] == r["epochs"] and 3 ** r["rung"] == r["epochs"], r
    else:
        assert r["status"] == b"done" and r["epochs"] == 27 and r["rung"] == 3 and r["max_epochs"] == 27, r
ids = {r["id"] for r in t if r["status"] == b"paused"}
hist = {(h["id"], int(h["epoch"])) for h in f["/history"][()]}
assert all((r["id"], int(r["epochs"])) in hist for r in t), "paused trials' histories are in /history"
EOF
py=$?  # before the message's \$(...) runs
check '[ $py = 0 ]' "decisions in results.h5 (status, decision, epochs_budget, rung, history): $(tail -2 "$T/err")"

# ---- petal report's Search section: its numbers against the store's, computed here -----
# From results.h5 alone (h5py): the epochs trained are the /history rows (one per
# fold epoch), the full grid's every trial's max_epochs x folds; the counts from
# status, decision and epochs; rung r reached by epochs >= r, gone on from by
# epochs > r or a promotion not run yet; the best the best_valid_acc of the done
# trials (ties: the smallest id), its varying settings from the typed columns.
# The md, html and tex sections must say the same.
cat >"$T/search.py" <<'EOF'
import sys, re, h5py, html.parser
run, rungs, mdf, htf, texf = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], sys.argv[3], sys.argv[4], sys.argv[5]
f = h5py.File(run + "/results.h5"); t = f["/trials"][()]
s = lambda r, k: r[k].decode()
rule = f.attrs["early_stop"].decode(); asha = rule.startswith("asha")
spent = len(f["/history"])
full = sum(int(r["max_epochs"]) * int(r["folds"]) for r in t)
done = [r for r in t if s(r, "status") == "done"]
paused = sum(s(r, "status") == "paused" and s(r, "decision") == "paused" for r in t)
stopped = sum(s(r, "decision") == "stopped" for r in t)
go = lambda r, e: r["epochs"] > e or (r["epochs"] == e and s(r, "decision") in ("promoted", "continued"))
promoted = sum(go(r, rungs[0]) for r in t)
want_rungs = [(e, sum(r["epochs"] >= e for r in t), sum(go(r, e) for r in t),
               sum(r["epochs"] == e and s(r, "status") == "paused" and s(r, "decision") == "paused" for r in t),
               sum(r["epochs"] == e and s(r, "decision") == "stopped" for r in t)) for e in rungs]
bv = max(r["best_valid_acc"] for r in done)
best = min((r for r in done if r["best_valid_acc"] == bv), key=lambda r: s(r, "id"))
ties = sum(r["best_valid_acc"] == bv for r in done) - 1
fixed = set("id status method label test_acc test_acc_std best_valid_acc best_epoch epochs folds seconds trainable total "
            "peak_rss_mib attempts epochs_budget decision error config host petal_version finished_at rung max_epochs".split())
want_set = set()
for k in t.dtype.names:
    v = best[k]
    if k in fixed or (isinstance(v, bytes) and not v) or (not isinstance(v, bytes) and (v == -1 or v != v)): continue
    want_set.add("%s=%s" % (k, v.decode() if isinstance(v, bytes) else v))
md = open(mdf).read()
sec = md[md.index("### Search (early stopping)"):]
val = dict(re.findall(r"^- \*\*([^*]+)\*\*: (.*)$", sec, re.M))
assert list(val) == ["early stopping", "epochs trained", "trials", "rungs", "best valid accuracy"], list(val)
assert val["early stopping"].startswith(rule + " (rungs at %s epochs" % ", ".join(map(str, rungs))), val
m = re.fullmatch(r"([\d,]+) of the full grid's ([\d,]+) \(([\d.]+)%; ([\d.]+)% saved\)", val["epochs trained"])
assert m and int(m[1].replace(",", "")) == spent == f.attrs["epochs_spent"] and int(m[2].replace(",", "")) == full, \
    (val["epochs trained"], spent, full)
assert m[3] == "%.1f" % (100 * spent / full) and m[4] == "%.1f" % (100 - 100 * spent / full), m.groups()
m = re.fullmatch(r"(\d+): (\d+) done, (\d+) paused, (\d+) stopped early, (\d+) (promoted at least once|continued past a rung)",
                 val["trials"])
want = [len(t), len(done), paused, stopped, promoted]
assert m and [int(x) for x in m.groups()[:5]] == want, (val["trials"], want)
word = "promoted" if asha else "continued"
got = [tuple(int(x or 0) for x in g) for g in
       re.findall(r"epoch (\d+): (\d+) reached, (\d+) %s(?:, (\d+) paused)?(?:, (\d+) stopped)?" % word, val["rungs"])]
assert got == want_rungs, (got, want_rungs)
m = re.fullmatch(r"([\d.]+)% by trial ([0-9a-f]{16}) \((.*?)(?:; (.*))?\), test accuracy ([\d.]+)%(?:; (\d+) more done trials? tie)?",
                 val["best valid accuracy"])
assert m and m[1] == "%.2f" % (100 * bv) and m[2] == s(best, "id") and m[3] == s(best, "label"), \
    (val["best valid accuracy"], s(best, "id"), s(best, "label"))
assert set((m[4] or "").split()) == want_set and m[5] == "%.2f" % (100 * best["test_acc"]) and int(m[6] or 0) == ties, \
    (m.groups(), want_set, ties)
# html: a <dl> in section#search with the same lines
class P(html.parser.HTMLParser):
    def __init__(p): super().__init__(); p.on = False; p.cur = None; p.kv = []; p.buf = ""
    def handle_starttag(p, tag, a):
        if tag == "section": p.on = dict(a).get("id") == "search"
        if p.on and tag in ("dt", "dd"): p.cur = tag; p.buf = ""
    def handle_endtag(p, tag):
        if p.on and tag == p.cur: p.kv.append(p.buf); p.cur = None
        if tag == "section": p.on = False
    def handle_data(p, d):
        if p.cur: p.buf += d
p = P(); p.feed(open(htf).read())
assert dict(zip(p.kv[::2], p.kv[1::2])) == val, (p.kv, val)
# tex: a booktabs table of the same lines, two columns a row
tex = open(texf).read(); tex = tex[tex.index("% petal report (booktabs): Search"):]
rows = [l[:-3] for l in tex.splitlines() if l.endswith(" \\\\")]
assert rows and all(r.count(" & ") == 1 for r in rows), rows
untex = lambda x: x.replace("\\%", "%").replace("\\_", "_").replace("--", "–")
assert {untex(k): untex(v) for k, v in (r.split(" & ") for r in rows)} == val, rows
print("ok: %s" % "; ".join("%s: %s" % kv for kv in val.items()))
EOF
search_ok() { # RUN rungs -> the report's Search section in md, html and tex against h5py
  $P report "$1" >"$T/s.md" && $P report "$1" --out "$T/s.html" && $P report "$1" --format tex >"$T/s.tex" &&
    $PY "$T/search.py" "$1" "$2" "$T/s.md" "$T/s.html" "$T/s.tex"
}
search_ok "$T/asha" 1,3,9 >"$T/out" 2>&1; rc=$?
check '[ $rc = 0 ]' "ASHA store: petal report's Search section = the store's numbers (rc $rc): $(tail -3 "$T/out")"
search_ok "$T/median" 1,3,9 >"$T/out" 2>&1; rc=$?
check '[ $rc = 0 ]' "median store: petal report's Search section = the store's numbers (rc $rc): $(tail -3 "$T/out")"
$P report "$T/grid" >"$T/g.md" 2>&1; rc=$?
$P report "$T/grid" --out "$T/g.html" 2>&1; rc2=$?
$P report "$T/grid" --format tex >"$T/g.tex" 2>&1; rc3=$?
check '[ $rc$rc2$rc3 = 000 ] && ! grep -q "Search\|epochs trained" "$T/g.md" "$T/g.html" "$T/g.tex"' \
  "a plain grid's report has no Search section (rc $rc $rc2 $rc3)"
$P report "$T/asha" --format csv >"$T/a.csv" 2>&1; rc=$?
$P report "$T/grid" --format csv >"$T/g.csv" 2>&1; rc2=$?
check '[ $rc$rc2 = 00 ] && ! grep -q "Search\|epochs trained" "$T/a.csv" && [ "$(head -1 "$T/a.csv")" = "$(head -1 "$T/g.csv")" ]' \
  "csv stays one line per cell with early stopping (rc $rc $rc2)"
# before any trial runs to its full budget an ASHA sweep already has news: the
# report shows every cell unfinished and the search's progress, not "nothing to report"
cp -r "$T/asha" "$T/midway"
$PY - "$T/midway" <<'EOF'
import h5py, sys
with h5py.File(sys.argv[1] + "/results.h5", "r+") as f:
    t = f["trials"][()]; t["status"][t["status"] == b"done"] = b"running"; f["trials"][...] = t
EOF
$P report "$T/midway" >"$T/mid.md" 2>"$T/err"; rc=$?
check '[ $rc = 0 ] && grep -q "(27 unfinished) |$" "$T/mid.md" && grep -q "trials\*\*: 27: 0 done, .* in progress$" "$T/mid.md" &&
  grep -q "best valid accuracy\*\*: none yet" "$T/mid.md"' \
  "an ASHA store with no trial done yet is reported with its search's progress (rc $rc): $(cat "$T/err") $(grep trials "$T/mid.md")"

# ---- kill -9 during an ASHA sweep, rerun: the same decisions and store -----------------
# ~100 epochs of 0.05 s: the kills (3.4 s in all) land before the sweep can end
SECS=0.05 drills "early_stop: {kind: asha, min_epochs: 1, eta: 3}" >"$T/k.yaml"
$P sweep "$T/k.yaml" --out "$T/kref" >/dev/null 2>&1
kills=0
for delay in 0.3 0.6 0.9 0.5 0.7 0.4; do
  setsid $P sweep "$T/k.yaml" --out "$T/krun" >/dev/null 2>&1 &
  pid=$!
  sleep $delay
  kill -9 -- -$pid 2>/dev/null && kills=$((kills + 1))
  wait $pid 2>/dev/null
done
$P sweep "$T/k.yaml" --out "$T/krun" >"$T/out" 2>&1; rc=$?
same_decisions() { # a b -> id, status, decision, epochs_budget, epochs, rung, metrics bit for bit
  $PY - "$1" "$2" <<'EOF'
import sys, h5py
def rows(p):
    t = h5py.File(p + "/results.h5")["/trials"][()]
    return {r["id"]: tuple(r[k].tobytes() for k in ("status", "decision", "epochs_budget", "epochs", "rung",
                                                   "test_acc", "best_valid_acc", "best_epoch")) for r in t}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
d = [k for k in a if a[k] != b.get(k)]
print("%d of %d trials differ %s" % (len(d), len(a), d[:3]))
sys.exit(0 if not d and len(a) == len(b) > 0 else 1)
EOF
}
check '[ $rc = 0 ] && [ $kills -ge 5 ] && same_decisions "$T/kref" "$T/krun" >"$T/err"' \
  "$kills kills then a rerun reach the uninterrupted ASHA sweep's decisions (rc $rc): $(cat "$T/err") $(tail -1 "$T/out")"

# ---- over MPI: decided by rank 0 alone; the final decisions hold ASHA's invariant ----
$MPIRUN -n 3 $P sweep "$T/asha.yaml" --out "$T/ashampi" >"$T/out" 2>"$T/err"; rc=$?
$PY - "$T/ashampi" "$T/grid" <<'EOF' >"$T/inv" 2>&1
import sys, h5py
t = h5py.File(sys.argv[1] + "/results.h5")["/trials"][()]
g = {r["id"]: r for r in h5py.File(sys.argv[2] + "/results.h5")["/trials"][()]}
curve = {}
for h in h5py.File(sys.argv[1] + "/results.h5")["/history"][()]:
    curve.setdefault(h["id"], {})[int(h["epoch"])] = h["valid_acc"]
for r in (1, 3, 9):
    rs = sorted((i for i in curve if max(curve[i]) >= r), key=lambda i: (-curve[i][r], i.decode()))
    topk = set(rs[: len(rs) // 3])
    for x in t:  # a trial left paused at r is not in the top 1/eta of r; the top went on
        if x["status"] == b"paused" and x["epochs"] == r: assert x["id"] not in topk, (r, x["id"])
    assert all(max(curve[i]) > r for i in topk), r
done = [x for x in t if x["status"] == b"done"]
assert done and all(x["best_valid_acc"].tobytes() == g[x["id"]]["best_valid_acc"].tobytes() for x in done)
print("ok", len(done), "done")
EOF
check '[ $rc = 0 ] && grep -q "^ok" "$T/inv"' "mpirun -n 3 ASHA (rc $rc): $(tail -2 "$T/inv") $(tail -2 "$T/err")"

# ---- a real tiny sweep: a paused, promoted trial = the same trial never paused ----------
real() { # ranks seeds early_stop-line
  cat <<EOF
study: real
base:
  train: {epochs: 8, batch: 8}
  method: lora
grid:
  lora.rank: [$1]
  train.seed: [$2]
$3
EOF
}
# rank 4 seed 1 runs first and is the best: paused at each rung (the first
# result there), promoted when the next one arrives; the reference runs it alone
real "4, 2, 8" "1, 2, 3, 4" "early_stop: {kind: asha, min_epochs: 1, eta: 2}" >"$T/rasha.yaml"
real 4 1 "" >"$T/rgrid.yaml"
$P sweep "$T/rgrid.yaml" --out "$T/rgrid" --threads 1 >/dev/null 2>&1; rc1=$?
$P sweep "$T/rasha.yaml" --out "$T/rasha" --threads 1 >"$T/rasha.out" 2>&1; rc2=$?
$PY - "$T/rasha" "$T/rgrid" "$T/rasha.out" <<'EOF' >"$T/cmp" 2>&1
import sys, h5py, glob
fa, fg = h5py.File(sys.argv[1] + "/results.h5"), h5py.File(sys.argv[2] + "/results.h5")
a = {r["id"]: r for r in fa["/trials"][()]}
g = {r["id"]: r for r in fg["/trials"][()]}
ha, hg = {}, {}
for h, f in ((ha, fa), (hg, fg)):
    for x in f["/history"][()]: h.setdefault(x["id"], []).append(x.tobytes()[16:])  # id cut, epochs in order
done = [i for i, r in a.items() if r["status"] == b"done"]
assert done, "no trial finished"
for i in done:
    assert i in g, "finished %s, not the reference trial (rank 4 seed 1)" % i
    for k in ("test_acc", "best_valid_acc", "best_epoch"):
        assert a[i][k].tobytes() == g[i][k].tobytes(), (i, k, a[i][k], g[i][k])
    n = len(ha[i]); assert n == 8 and [x[:-8] for x in ha[i]] == [x[:-8] for x in hg[i]], i  # every epoch but its seconds
# was a finished trial paused (its rung's first result) and promoted later?
runs = {i: len(open(glob.glob(sys.argv[1] + "/trials/%s/log.txt" % i.decode())[0]).read().split("== trial")) - 1 for i in done}
print("ok", len(done), "done of", len(a), "runs per done trial", sorted(runs.values()),
      "epochs", fa.attrs["epochs_spent"], "of", 8 * len(a))
assert all(v == 4 for v in runs.values())  # budgets 1, 2, 4, 8: resumed three times
out = open(sys.argv[3]).read()
assert any(i.decode() + " promoted from its pause" in out for i in done), "no finished trial was paused"
EOF
check '[ $rc1 = 0 ] && [ $rc2 = 0 ] && grep -q "^ok" "$T/cmp"' \
  "real ASHA sweep: promoted trials equal unpaused ones bit for bit (rc $rc1 $rc2): $(tail -3 "$T/cmp")"
search_ok "$T/rasha" 1,2,4 >"$T/out" 2>&1; rc=$?
check '[ $rc = 0 ] && grep -q "; lora.rank=4 train.seed=1)" "$T/out"' \
  "real ASHA store: the Search section = the store's numbers, the best trial's settings (rc $rc): $(tail -3 "$T/out")"

echo "asha: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
