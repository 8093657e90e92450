#!/usr/bin/env bash
# One backbone per node, measured: N training processes (petal bench on a
# ViT-B backbone file, Pfeiffer adapter, 1 thread each) run at once, first
# sharing the frozen backbone through the node-wide image (--backbone-cache),
# then each with a private copy (--backbone-cache off). The node's memory is
# the sum of the processes' PSS (proportional set size: a page mapped by k
# processes counts 1/k in each), sampled while all N run; the peak is kept.
#   SHARE_PROCS=4 SHARE_METHOD=adapter_pfeiffer SHARE_SIZE=base SHARE_STEPS=3
# Prints:
#   bench share method=M processes=N pss_mib=X private_pss_mib=Y ratio=X/Y shared_mib=S
set -euo pipefail
cd "$(dirname "$0")/.."
procs=${SHARE_PROCS:-4}
method=${SHARE_METHOD:-adapter_pfeiffer}
size=${SHARE_SIZE:-base}
steps=${SHARE_STEPS:-3}
work=$(mktemp -d /tmp/petal-share-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
./petal model init --size "$size" --frames 100 --out "$work/backbone.h5" >/dev/null

# run <cache>: starts the processes, prints "<peak summed PSS in kB> <shared_mib>"
run() {
  local cache=$1 pids=() peak=0 sum alive pid
  for i in $(seq "$procs"); do
    ./petal bench --size "$size" --method "$method" --threads 1 --batch 8 --steps "$steps" \
      --backbone "$work/backbone.h5" --backbone-cache "$cache" >"$work/out.$i" &
    pids+=($!)
  done
  while :; do
    sum=0; alive=0
    for pid in "${pids[@]}"; do
      kb=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
      [ -n "$kb" ] && { sum=$((sum + kb)); alive=$((alive + 1)); }
    done
    [ "$alive" -eq "$procs" ] && [ "$sum" -gt "$peak" ] && peak=$sum
    [ "$alive" -eq 0 ] && break
    sleep 0.2
  done
  wait "${pids[@]}"
  echo "$peak $(tr ' ' '\n' <"$work/out.1" | sed -n 's/^shared_mib=//p')"
}

read -r shared_kb shared_mib < <(run "$work/images")
read -r private_kb _ < <(run off)
awk -v m="$method" -v n="$procs" -v s="$shared_kb" -v p="$private_kb" -v sm="$shared_mib" 'BEGIN {
  printf "bench share method=%s processes=%d pss_mib=%.1f private_pss_mib=%.1f ratio=%.2f shared_mib=%s\n",
         m, n, s / 1024, p / 1024, s / p, sm }'
