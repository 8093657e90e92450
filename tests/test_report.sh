#!/usr/bin/env bash
# `petal report` end to end: hand-built stores with known numbers (written by
# build/tests/test_report --make-store) in every format, each parsed back:
# Markdown text, CSV through Python's csv module (values and a byte-exact
# round trip), LaTeX balanced (compiled when a TeX is installed), the HTML page
# rendered by headless Chromium (table text read back from the DOM, a
# screenshot that is not blank); figures (PNG, SVG); a store made by a real
# tiny sweep (cells equal to the store's numbers computed with h5py); a report
# of a store while its sweep still runs; bad input -> one line, exit 2.
cd "$(dirname "$0")/.."
P=./petal
PY=/usr/bin/python3
T=$(mktemp -d /tmp/petal_test_report_XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

"${PETAL_BUILD:-build}"/tests/test_report --make-store "$T" || { echo "FAIL: cannot make the stores"; exit 1; }
K=$T/known G=$T/grids

# ---- Markdown: the known numbers ------------------------------------------------------
$P report "$K" >"$T/k.md" 2>"$T/err"; rc=$?
check '[ $rc = 0 ] && [ ! -s "$T/err" ]' "report md: rc $rc $(cat "$T/err")"
for line in \
  '| method | trainable params | % of total | esc50 | gsc |' \
  '| linear | 100 | 10.00 | 60.0 ± 10.0 (3) | – |' \
  '| LoRA r4 (q,v) | 300–320 | 30.00–32.00 | **75.0 ± 8.2 (4)** (1 failed) | 62.0 ± 1.0 (3) |' \
  '| LoRA r8 (q,v) | 400 | 40.00 | – (3 failed) | **90.0 (1)** (2 unfinished) |' \
  '| Pfeiffer d8 | 500 | 5.00 | 74.0 ± 0.0 (3) | **90.0 ± 7.1 (2)** (1 unfinished) |'; do
  check 'grep -qxF -- "$line" "$T/k.md"' "markdown lacks: $line"
done
$P report "$K" --where dataset.layout=gsc --where method=lora --metric seconds >"$T/w.md"
check 'grep -qxF "| LoRA r4 (q,v) | 320 | 32.00 | 20.0 ± 10.0 (3) |" "$T/w.md" && grep -qxF "| LoRA r8 (q,v) | 400 | 40.00 | **10.0 (1)** (2 unfinished) |" "$T/w.md" && [ $(grep -c "^| LoRA" "$T/w.md") = 2 ] && ! grep -q "Pfeiffer\|linear" "$T/w.md"' \
  "--where x2 --metric seconds: $(cat "$T/w.md")"
$P report "$K" --rows train.seed --cols label --out "$T/s.md"
check 'grep -qxF "| train.seed | linear | LoRA r4 (q,v) | LoRA r8 (q,v) | Pfeiffer d8 |" "$T/s.md"' \
  "--rows train.seed --cols label: $(head -3 "$T/s.md")"

# ---- CSV: parsed by Python's csv module, values and a byte-exact round trip -------------
$P report "$K" --format csv --out "$T/k.csv"; rc=$?
check '[ $rc = 0 ]' "csv rc $rc"
$PY - "$T/k.csv" >"$T/out" 2>&1 <<'EOF'
import csv, io, math, sys
text = open(sys.argv[1], newline='').read()
rows = list(csv.DictReader(io.StringIO(text)))
assert len(rows) == 8, len(rows)
cell = {(r['row'], r['col']): r for r in rows}
c = cell[('LoRA r4 (q,v)', 'esc50')]
assert abs(float(c['mean']) - 75) < 1e-6 and abs(float(c['std']) - 100 * math.sqrt(0.02 / 3)) < 1e-6, c
assert (c['n'], c['failed'], c['best'], c['trainable_min'], c['trainable_max']) == ('4', '1', '1', '300', '320'), c
m = cell[('linear', 'gsc')]
assert m['trials'] == '0' and m['mean'] == '' and m['n'] == '0', m
u = cell[('LoRA r8 (q,v)', 'gsc')]
assert u['unfinished'] == '2' and u['std'] == '' and u['best'] == '1', u
out = io.StringIO()
w = csv.writer(out, lineterminator='\n')
w.writerow(rows[0].keys())
for r in rows: w.writerow(r.values())
assert out.getvalue() == text, 'csv round trip differs'
print('csv ok')
EOF
check 'grep -q "csv ok" "$T/out"' "csv: $(cat "$T/out")"

# ---- LaTeX: balanced, booktabs; compiled when a TeX is installed -----------------------
$P report "$G" --table ablation --format tex --out "$T/a.tex"
$P report "$K" --format tex >"$T/k.tex"
$PY - "$T/a.tex" "$T/k.tex" >"$T/out" 2>&1 <<'EOF'
import re, sys
for path in sys.argv[1:]:
    t = open(path).read()
    body = re.sub(r'\\[{}%$&#_]', '', t)  # escaped characters
    body = '\n'.join(l for l in body.split('\n') if not l.startswith('%'))
    depth = 0
    for ch in body:
        depth += ch == '{'
        depth -= ch == '}'
        assert depth >= 0, (path, 'unbalanced }')
    assert depth == 0, (path, 'unbalanced {')
    envs = re.findall(r'\\(begin|end)\{(\w+)\}', body)
    stack = []
    for kind, name in envs:
        if kind == 'begin': stack.append(name)
        else: assert stack and stack.pop() == name, (path, name)
    assert not stack, (path, stack)
    for rule in ('\\toprule', '\\midrule', '\\bottomrule'): assert rule in t, (path, rule)
    # every row has its tabular's column count
    for block in t.split('\\begin{tabular}')[1:]:
        spec = re.match(r'\{(\w+)\}', block).group(1)
        rows = re.findall(r'^(.*)\\\\$', block.split('\\end{tabular}')[0], re.M)
        assert len(rows) >= 2, (path, rows)
        for r in rows: assert len(re.split(r'(?<!\\)&', r)) == len(spec), (path, r)
assert '\\textbf{75.0 $\\pm$ 8.2 (4)} (1 failed)' in open(sys.argv[2]).read()
print('tex ok')
EOF
check 'grep -q "tex ok" "$T/out"' "tex: $(cat "$T/out")"
if command -v pdflatex >/dev/null 2>&1; then
  printf '\\documentclass{article}\\usepackage[utf8]{inputenc}\\usepackage{booktabs}\\begin{document}\n\\input{k.tex}\n\\input{a.tex}\n\\end{document}\n' >"$T/doc.tex"
  (cd "$T" && timeout 60 pdflatex -interaction=nonstopmode -halt-on-error doc.tex >latex.log 2>&1)
  check '[ -s "$T/doc.pdf" ]' "pdflatex failed: $(tail -5 "$T/latex.log")"
else
  echo "SKIP: no TeX installed (pdflatex not found): the LaTeX was checked for balance and booktabs only, not compiled"
fi

# ---- figures -------------------------------------------------------------------------
$P report "$G" --table fewshot --plot "$T/few.png" >/dev/null; rc=$?
$P report "$G" --table scaling --plot "$T/scale.svg" >/dev/null; rc2=$?
$P report "$G" --table ablation --plot "$T/abl.png" >/dev/null; rc3=$?
check '[ $rc = 0 ] && [ $(head -c 8 "$T/few.png" | od -An -tx1 | tr -d " \n") = 89504e470d0a1a0a ] && [ $(stat -c %s "$T/few.png") -gt 10000 ]' \
  "fewshot png: rc $rc, $(ls -la "$T"/few.png 2>&1)"
check '[ $rc2 = 0 ] && grep -q "<svg" "$T/scale.svg" && grep -q "trainable parameters (count, log scale)" "$T/scale.svg" && grep -q "test accuracy (%)" "$T/scale.svg"' \
  "scaling svg with labelled axes: rc $rc2"
check '[ $rc3 = 0 ] && [ -s "$T/abl.png" ] && [ -s "$T/abl-2.png" ]' "ablation: two figures (FILE.png, FILE-2.png): rc $rc3"

# ---- HTML in headless Chromium: the table's text from the DOM, a non-blank screenshot ----
$P report "$G" --out "$T/g.html"; rc=$?
$P report "$K" --out "$T/k.html"; rc2=$?
check '[ $rc = 0 ] && [ $rc2 = 0 ] && grep -q "<svg" "$T/k.html" && ! grep -qi "<img\|<link\|<script src" "$T/k.html"' \
  "html is one self-contained page with an inline SVG: rc $rc/$rc2"
check '[ $(grep -c "<h2>" "$T/g.html") -ge 5 ] && grep -q "LoRA targets" "$T/g.html" && grep -q "by training examples per class" "$T/g.html"' \
  "the grids page holds main, fewshot, scaling and both ablation tables: $(grep -o "<h2>[^<]*" "$T/g.html" | tr '\n' ' ')"
if command -v chromium >/dev/null 2>&1; then
  CHROME=(timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
          --disable-background-networking --disable-component-update --disable-sync
          --disable-dev-shm-usage --hide-scrollbars)
  "${CHROME[@]}" --user-data-dir="$T/chrome1" --dump-dom "file://$T/k.html" >"$T/dom.html" 2>"$T/chrome.log"
  $PY - "$T/dom.html" >"$T/out" 2>&1 <<'EOF'
import html.parser, sys
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.rows = []; s.row = None; s.cell = None; s.strong = False; s.bold = []
    def handle_starttag(s, t, a):
        if t == 'tr': s.row = []
        if t in ('td', 'th') and s.row is not None: s.cell = ''
        if t == 'strong': s.strong = True
    def handle_endtag(s, t):
        if t in ('td', 'th') and s.cell is not None: s.row.append(s.cell.strip()); s.cell = None
        if t == 'tr' and s.row is not None: s.rows.append(s.row); s.row = None
        if t == 'strong': s.strong = False
    def handle_data(s, d):
        if s.cell is not None: s.cell += d
        if s.strong: s.bold.append(d)
p = P(); p.feed(open(sys.argv[1]).read())
want = [['method', 'trainable params', '% of total', 'esc50', 'gsc'],
        ['linear', '100', '10.00', '60.0 ± 10.0 (3)', '–'],
        ['LoRA r4 (q,v)', '300–320', '30.00–32.00', '75.0 ± 8.2 (4) (1 failed)', '62.0 ± 1.0 (3)'],
        ['LoRA r8 (q,v)', '400', '40.00', '– (3 failed)', '90.0 (1) (2 unfinished)'],
        ['Pfeiffer d8', '500', '5.00', '74.0 ± 0.0 (3)', '90.0 ± 7.1 (2) (1 unfinished)']]
assert p.rows[:5] == want, p.rows[:5]
assert p.bold[:3] == ['75.0 ± 8.2 (4)', '90.0 (1)', '90.0 ± 7.1 (2)'], p.bold  # the main table's
print('dom ok')
EOF
  check 'grep -q "dom ok" "$T/out"' "the rendered DOM's table: $(cat "$T/out") $(tail -3 "$T/chrome.log")"
  "${CHROME[@]}" --user-data-dir="$T/chrome2" --window-size=1200,1600 --screenshot="$T/shot.png" "file://$T/k.html" \
    >/dev/null 2>"$T/chrome2.log"
  $PY - "$T/shot.png" >"$T/out" 2>&1 <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat, w = 8, b'', None
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    if kind == b'IDAT': idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
colours, dark = set(), 0
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp * 2):
        px = bytes(line[x:x + 3]); colours.add(px); dark += sum(px) < 300
    prev = line
share = dark / (w * h / 2)
assert len(colours) > 20 and share > 0.005, (len(colours), share)
print('screenshot ok: %dx%d, %d colours, %.1f%% dark' % (w, h, len(colours), 100 * share))
EOF
  check 'grep -q "screenshot ok" "$T/out"' "screenshot blank or unreadable: $(cat "$T/out") $(tail -3 "$T/chrome2.log")"
  grep "screenshot ok" "$T/out"
else
  bad "chromium is not installed (tools/deps.sh installs it)"
fi

# ---- a store made by a real tiny sweep: cells equal the store's numbers -----------------
cat >"$T/real.yaml" <<'EOF'
study: tiny
base: {train: {epochs: 2, batch: 8}}
grid:
  train.seed: [1, 2]
  method: [linear, {method: lora, lora.rank: 2}]
EOF
$P sweep "$T/real.yaml" --out "$T/real" --threads 1 >"$T/sweep.log" 2>&1; rc=$?
check '[ $rc = 0 ]' "tiny sweep rc $rc: $(tail -3 "$T/sweep.log")"
$P report "$T/real" --format csv --out "$T/real.csv"
$P report "$T/real" --out "$T/real.md" --plot "$T/real.png"; rc=$?
$PY - "$T/real" "$T/real.csv" >"$T/out" 2>&1 <<'EOF'
import csv, h5py, statistics, sys
t = h5py.File(sys.argv[1] + '/results.h5')['trials'][()]
acc = {}
for r in t:
    acc.setdefault(r['label'].decode(), []).append(100 * r['test_acc'])
rows = {r['row']: r for r in csv.DictReader(open(sys.argv[2]))}
assert sorted(rows) == sorted(acc) == ['LoRA r2 (q,v)', 'linear'], (rows.keys(), acc.keys())
for k, v in acc.items():
    assert abs(float(rows[k]['mean']) - statistics.mean(v)) < 1e-6, (k, rows[k]['mean'], v)
    assert abs(float(rows[k]['std']) - statistics.stdev(v)) < 1e-6, (k, rows[k]['std'], v)
    assert rows[k]['n'] == '2'
print('real ok')
EOF
check '[ $rc = 0 ] && grep -q "real ok" "$T/out" && grep -q "^| linear | .* (2) |$" "$T/real.md" && [ -s "$T/real.png" ]' \
  "report of a real sweep: rc $rc $(cat "$T/out")"

# ---- one label, several method settings (drills all say "drill noop"): rows stay apart --------
cat >"$T/drill.yaml" <<'EOF2'
base: {drill: noop}
grid:
  method: [linear, {method: lora, lora.rank: [2, 4]}]
EOF2
$P sweep "$T/drill.yaml" --out "$T/drill" >/dev/null 2>&1
$P report "$T/drill" >"$T/drill.md"
check '[ $(grep -c "^| drill noop \[" "$T/drill.md") = 3 ] && [ $(grep "^| drill" "$T/drill.md" | cut -d"|" -f2 | sort -u | wc -l) = 3 ]' \
  "rows with one label keep apart by their settings: $(grep "^| drill" "$T/drill.md")"

# ---- while the sweep runs: every report reads a consistent store --------------------------
cat >"$T/live.yaml" <<'EOF'
study: live
base: {drill: sleep, drill.seconds: 0.4}
grid:
  train.seed: [1, 2, 3, 4, 5, 6, 7, 8]
EOF
$P sweep "$T/live.yaml" --out "$T/live" >"$T/live.log" 2>&1 &
sweep=$!
reports=0; partial=0; broken=0
while kill -0 $sweep 2>/dev/null; do
  if [ -f "$T/live/results.h5" ]; then
    $P report "$T/live" >"$T/live.md" 2>"$T/live.err"; rc=$?
    reports=$((reports + 1))
    if [ $rc = 0 ]; then grep -q "unfinished" "$T/live.md" && partial=$((partial + 1))
    elif ! { [ $rc = 2 ] && grep -q "no trial has finished yet" "$T/live.err"; }; then
      broken=$((broken + 1)); echo "live report rc $rc: $(cat "$T/live.err")"; fi
  fi
  sleep 0.2
done
wait $sweep
$P report "$T/live" >"$T/live.md"; rc=$?
check '[ $broken = 0 ] && [ $partial -ge 1 ] && [ $rc = 0 ] && grep -q "(8) |$" "$T/live.md"' \
  "reports during a sweep: $reports made, $partial partial, $broken broken; at the end: $(grep '^| drill' "$T/live.md")"

# ---- bad input: one line naming the flag or the store, exit 2 ---------------------------
cp -r "$K" "$T/old" && cp -r "$K" "$T/empty" && cp -r "$K" "$T/waiting"
$PY - "$T" <<'EOF'
import h5py, sys
d = sys.argv[1]
with h5py.File(d + '/old/results.h5', 'r+') as f: f.attrs['format'] = 'petal-results 0'
with h5py.File(d + '/empty/results.h5', 'r+') as f:
    t = f['trials'][()]; del f['trials']; f.create_dataset('trials', data=t[:0])
with h5py.File(d + '/waiting/results.h5', 'r+') as f:
    t = f['trials'][()]; t['status'] = b'pending'; f['trials'][...] = t
EOF
bad_input() { # expected-fragment args...
  local want=$1; shift
  $P report "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -qF -- "$want" "$T/err" && [ ! -s "$T/out" ]; then ok
  else bad "report $*: rc $rc, want 2 and one line with '$want': $(cat "$T/err")"; fi
}
bad_input "results.h5: a results store of format 'petal-results 0' (this petal reads 'petal-results 1')" "$T/old"
bad_input "the store holds no trials" "$T/empty"
bad_input "no trial has finished yet" "$T/waiting"
bad_input "--where method=full: no trial of $K/results.h5 matches (method takes 'linear', 'lora', 'adapter_pfeiffer' there)" "$K" --where method=full
bad_input "--metric expects test_acc, best_valid_acc, seconds or peak_rss_mib, got 'accuracy'" "$K" --metric accuracy
bad_input "--format expects md, csv, tex or html, got 'pdf'" "$K" --format pdf
bad_input "--table expects main, fewshot, scaling or ablation, got 'big'" "$K" --table big
bad_input "--cols: unknown key 'dataset.shot'" "$K" --cols dataset.shot
bad_input "--plot $T/x.jpg: the figure's name must end in .png or .svg" "$K" --plot "$T/x.jpg"
bad_input "$T/nothing/results.h5: no results store here" "$T/nothing"
bad_input "RUN is required" --metric seconds
bad_input "--table ablation: $K/results.h5 has no adapter or LoRA trial that --where keeps" "$K" --table ablation --where method=linear

echo "test_report.sh: $pass passed, $fail failed"
[ $fail = 0 ]
