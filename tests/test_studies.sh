#!/usr/bin/env bash
# The ready studies in sweeps/ expand as they stand: every spec dry-runs with
# dummy PETAL_DATA / PETAL_BACKBONE, into the trial counts per method written
# below (a spec added to sweeps/ without its counts here fails), names the
# paper's table or figure it reproduces, and reads its data and backbone
# through the variables; the main comparison covers every dataset with the
# fold protocol and Conformer kernel of each; every method configuration the
# specs ask for builds its ViT-B model (`petal model params`).
cd "$(dirname "$0")/.."
P=./petal
T=$(mktemp -d /tmp/petal_test_studies_XXXXXX)
trap 'rm -rf "$T"' EXIT
export PETAL_DATA=/nonexistent/petal-data PETAL_BACKBONE=/nonexistent/petal-backbone.h5
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# the dry run's closing line of each spec
declare -A want=(
  [demo.yaml]="28 trials: full 8, linear 4, bitfit 4, lora 4, adapter_pfeiffer 4, prompt_deep 4"
  [demo_dtype.yaml]="30 trials: linear 6, bitfit 6, lora 6, adapter_pfeiffer 6, prompt_deep 6"
  [paper_main.yaml]="44 trials: full 4, linear 4, bitfit 4, prompt_shallow_paper 4, prompt_deep_paper 4, prefix_paper 4, lora_paper 4, adapter_pfeiffer_paper 4, adapter_houlsby_paper 4, conformer_paper_audio 4, conformer_paper_speech 4"
  [paper_fewshot.yaml]="270 trials: full 30, linear 30, bitfit 30, prompt_deep_paper 30, prefix_paper 30, lora_paper 30, adapter_pfeiffer_paper 30, adapter_houlsby_paper 30, conformer_paper_audio 15, conformer_paper_speech 15"
  [paper_scaling.yaml]="50 trials: lora_paper 12, adapter_pfeiffer_paper 10, conformer_paper_audio 4, conformer_paper_speech 4, prompt_deep_paper 10, prefix_paper 10"
  [paper_adapter_placement.yaml]="24 trials: adapter_pfeiffer_paper 16, adapter_houlsby_paper 8"
  [paper_lora_targets.yaml]="8 trials: lora_paper 8"
  [esc50-methods.yaml]="36 trials: full 3, linear 3, bitfit 3, lora 3, adapter_pfeiffer 3, adapter_houlsby 3, conformer 3, prompt_shallow 3, prompt_deep 3, prefix 3, dense_moa 3, soft_moa 3"
)

n=0
for spec in sweeps/*.yaml; do
  name=$(basename "$spec"); n=$((n + 1))
  if ! $P sweep "$spec" --dry-run >"$T/$name.out" 2>"$T/$name.err"; then
    bad "$name does not expand: $(cat "$T/$name.err")"; continue
  fi
  got=$(tail -1 "$T/$name.out")
  if [ -z "${want[$name]:-}" ]; then bad "$name: no expected counts in tests/test_studies.sh (it expands to: $got)"
  elif [ "$got" = "${want[$name]}" ]; then ok
  else bad "$name: expands to '$got', expected '${want[$name]}'"; fi
  # one line per trial, each with a distinct 16-hex id
  lines=$(grep -cE '^[0-9a-f]{16}( |$)' "$T/$name.out")
  ids=$(grep -oE '^[0-9a-f]{16}' "$T/$name.out" | sort -u | wc -l)
  total=${got%% *}
  if [ "$lines" = "$total" ] && [ "$ids" = "$total" ]; then ok; else bad "$name: $lines lines, $ids ids, $total trials"; fi
  # names what it reproduces; data through the variables, never a path of this machine
  # the leading comment names what it reproduces (a table, a figure, the demo)
  if sed -n '/^[^#]/q; p' "$spec" | grep -qiE 'reproduces|table [0-9]|figure [0-9]|demo study'; then ok
  else bad "$name: its header comment names no table, figure or study it reproduces"; fi
  if grep -q '\${PETAL_DATA}' "$spec"; then ok; else bad "$name: dataset roots not under \${PETAL_DATA}"; fi
  case $name in paper_*)
    if grep -q '\${PETAL_BACKBONE}' "$spec"; then ok; else bad "$name: backbone not \${PETAL_BACKBONE}"; fi
    if grep -qF "$PETAL_BACKBONE" "$T/$name.out" || PETAL_BACKBONE=/elsewhere.h5 $P sweep "$spec" --dry-run |
         diff -q - "$T/$name.out" >/dev/null; then
      bad "$name: trial ids do not depend on \${PETAL_BACKBONE}"
    else ok; fi ;;
  esac
done
[ "$n" -eq "${#want[@]}" ] && ok || bad "$n specs in sweeps/, ${#want[@]} expected (a spec is missing)"

# an unset variable is refused, naming it (the specs cannot silently run on '')
if env -u PETAL_BACKBONE $P sweep sweeps/paper_main.yaml --dry-run >/dev/null 2>"$T/unset"; then
  bad "paper_main.yaml expands without PETAL_BACKBONE"
elif grep -q 'PETAL_BACKBONE' "$T/unset"; then ok
else bad "unset PETAL_BACKBONE not named: $(cat "$T/unset")"; fi

# the main comparison: per dataset, its fold protocol and the Conformer kernel of its kind
m="$T/paper_main.yaml.out"
for ds in esc50 us8k; do
  c=$(grep -c "dataset.layout=$ds dataset.fold=all " "$m"); [ "$c" = 11 ] && ok || bad "main: $ds has $c trials on every fold, 11 expected"
  grep -q "dataset.layout=$ds .*method=conformer_paper_speech" "$m" && bad "main: $ds runs the speech Conformer" || ok
done
for ds in gsc fsc; do
  c=$(grep -c "dataset.layout=$ds dataset.fold=1 " "$m"); [ "$c" = 11 ] && ok || bad "main: $ds has $c trials on its split, 11 expected"
  grep -q "dataset.layout=$ds .*method=conformer_paper_audio" "$m" && bad "main: $ds runs the audio Conformer" || ok
done
# the placement ablation: seq_add exactly on sequential-before, residual exactly on sequential-after
p="$T/paper_adapter_placement.yaml.out"
c=$(grep -c 'adapter.conf=sequential adapter.position=before .*adapter.seq_add=true' "$p"); [ "$c" = 6 ] && ok || bad "placement: $c sequential-before trials with seq_add, 6 expected"
c=$(grep -c 'adapter.seq_add=true' "$p"); [ "$c" = 6 ] && ok || bad "placement: seq_add on $c trials, 6 expected"
c=$(grep -c 'adapter.conf=sequential adapter.position=after .*adapter.residual=true' "$p"); [ "$c" = 6 ] && ok || bad "placement: $c sequential-after trials with residual, 6 expected"

# every method configuration the paper specs vary builds its ViT-B model (the
# dry run checks keys and values; building checks their combination)
for spec in sweeps/paper_*.yaml; do
  name=$(basename "$spec")
  while read -r _ rest; do
    m=""; args=()
    for kv in $rest; do
      case $kv in dataset.*|train.*|*=-) ;; method=*) m=${kv#method=} ;; *) args+=(--set "$kv") ;; esac
    done
    [ -n "$m" ] && echo "$m ${args[*]}"
  done < <(grep -E '^[0-9a-f]{16} ' "$T/$name.out")
done | sort -u >"$T/configs"
while read -r m rest; do
  # shellcheck disable=SC2086
  if $P model params --size base --method "$m" $rest >"$T/params" 2>&1; then ok
  else bad "model of method=$m $rest: $(cat "$T/params")"; fi
done <"$T/configs"
[ "$(wc -l <"$T/configs")" -ge 50 ] && ok || bad "only $(wc -l <"$T/configs") method configurations found"
# the LoRA target ablation (its method does not vary, so it is not in the lines):
# one A/B pair of rank 6 per target, 2 x 768 x 6 x 12 layers = 110,592 each
for t in q:1 qk:2 qv:2 qkvo:4; do
  out=$($P model params --size base --method lora_paper --set lora.targets="${t%:*}" 2>&1)
  if echo "$out" | grep -q "paper=$((${t#*:} * 110592))\b"; then ok
  else bad "lora_paper targets ${t%:*}: $out"; fi
done

echo "test_studies: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
