#!/usr/bin/env bash
# The petal binary as a user meets it: help, exit codes (0 ok, 2 usage/input),
# one-line errors on stderr, a synthetic trial whose loss falls.
cd "$(dirname "$0")/.."
# private output files: engineers' test runs share /tmp
D=$(mktemp -d /tmp/petal_cli_XXXXXX); O=$D/out E=$D/err
trap 'rm -rf "$D"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect_rc() { # rc command...
  local want=$1; shift
  "$@" >"$O" 2>"$E"; local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$* -> rc $rc, want $want: $(cat "$E")"; fi
}
expect_rc 0 ./petal --help
grep -q "train" "$O" && ok || bad "help lists train"
expect_rc 2 ./petal
expect_rc 2 ./petal frobnicate
grep -q "unknown command 'frobnicate'" "$E" && ok || bad "unknown command named"
for c in train model bench demo; do expect_rc 0 ./petal $c --help; done
expect_rc 2 ./petal train --synthetic --method nope
grep -q "method expects full, linear, .*got 'nope'" "$E" && ok || bad "bad method named"
expect_rc 2 ./petal train --synthetic --epochs -3
grep -q -- "--epochs: train.epochs expects an integer" "$E" && ok || bad "bad epochs named"
expect_rc 2 ./petal train --synthetic --bogus
expect_rc 2 ./petal model params --size huge
grep -q "unknown model size 'huge'" "$E" && ok || bad "bad size named"
expect_rc 0 ./petal model params --size base --method linear
grep -q "method=linear trainable=28451 total=85366307" "$O" && ok || bad "linear counts at ViT-B: $(cat "$O")"
# the paper's way of counting (Table 1 of arXiv 2312.03694), printed beside the total
expect_rc 0 ./petal model params --method conformer_paper_speech --set adapter.type=houlsby
grep -q "trainable=569891 .* paper=541440$" "$O" && ok || bad "Houlsby Conformer counts: $(cat "$O")"
expect_rc 0 ./petal model params --method bitfit
grep -q "trainable=129059 .* paper=102144$" "$O" && ok || bad "BitFit counts: $(cat "$O")"
expect_rc 2 ./petal model params --method conformer --set adapter.norm=maybe
grep -q "adapter.norm expects applied or discarded" "$E" && ok || bad "bad adapter.norm named"
expect_rc 0 ./petal train --synthetic --epochs 4 --lr 1e-3 --threads 1
first=$(sed -n 's/^epoch 1 train_loss=\([0-9.]*\).*/\1/p' "$O")
last=$(sed -n 's/^epoch 4 train_loss=\([0-9.]*\).*/\1/p' "$O")
awk -v f="$first" -v l="$last" 'BEGIN{exit !(l < f)}' && ok || bad "train loss falls ($first -> $last)"
grep -q "^result fold=1 best_epoch=" "$O" && ok || bad "result line"
# The settings reference in docs/ is the table's own output (it cannot go stale).
./petal train --keys-markdown >"$O"
sed -n '/^| key /,$p' docs/SETTINGS.md | cmp -s - "$O" && ok || bad "docs/SETTINGS.md is current (petal train --keys-markdown)"
expect_rc 2 ./petal train --set lora.rnak=4
grep -q "did you mean lora.rank" "$E" && ok || bad "unknown key suggests the nearest"
# The GEMM engine and the bf16 backbone from the command line.
PETAL_GEMM=mkl expect_rc 2 ./petal bench --help
grep -q "unknown GEMM engine 'mkl'" "$E" && ok || bad "bad PETAL_GEMM named"
expect_rc 2 ./petal train --synthetic --set model.dtype=fp16
grep -q "model.dtype expects fp32 or bf16" "$E" && ok || bad "bad model.dtype named"
if grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo; then
  expect_rc 0 ./petal train --synthetic --method lora --epochs 2 --threads 1 --set model.dtype=bf16
  grep -q "^result fold=1 best_epoch=" "$O" && ok || bad "bf16 trial result line"
  expect_rc 2 env PETAL_GEMM=openblas ./petal train --synthetic --method lora --epochs 1 --set model.dtype=bf16
  grep -q "oneDNN GEMM engine" "$E" && ok || bad "bf16 on OpenBLAS refused: $(cat "$E")"
fi
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
