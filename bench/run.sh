#!/usr/bin/env bash
# `make bench`: petal and PyTorch side by side, same config and threads, in
# the same run; the sgemm ceiling is measured by petal bench itself.
#   BENCH_METHODS="full lora ..." BENCH_SIZE=base BENCH_THREADS=2 BENCH_STEPS=5 (defaults: every method)
# One line per method:
#   bench method=M frames=T batch=B samples_per_s=X torch_samples_per_s=Y ratio=X/Y
#         gflops=G sgemm_gflops=S sgemm_frac=G/S rss_mib=R torch_rss_mib=TR
set -euo pipefail
cd "$(dirname "$0")/.."
methods=${BENCH_METHODS:-full linear bitfit lora adapter_pfeiffer adapter_houlsby conformer prompt_deep prefix soft_moa dense_moa}
size=${BENCH_SIZE:-base}
threads=${BENCH_THREADS:-2}
steps=${BENCH_STEPS:-5}
frames=${BENCH_FRAMES:-100}
batch=${BENCH_BATCH:-8}

field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

echo "# $(date -u +%Y-%m-%d) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, threads=$threads size=$size"
for m in $methods; do
  p=$(./petal bench --method "$m" --size "$size" --threads "$threads" --steps "$steps" \
        --frames "$frames" --batch "$batch")
  t=$(/usr/bin/python3 bench/torch_bench.py --method "$m" --size "$size" --threads "$threads" \
        --steps "$steps" --frames "$frames" --batch "$batch")
  x=$(echo "$p" | field samples_per_s); y=$(echo "$t" | field samples_per_s)
  echo "bench method=$m frames=$frames batch=$batch samples_per_s=$x torch_samples_per_s=$y" \
       "ratio=$(awk -v x="$x" -v y="$y" 'BEGIN{printf "%.2f", x/y}')" \
       "gflops=$(echo "$p" | field gflops) sgemm_gflops=$(echo "$p" | field sgemm_gflops)" \
       "sgemm_frac=$(echo "$p" | field sgemm_frac) rss_mib=$(echo "$p" | field rss_mib)" \
       "torch_rss_mib=$(echo "$t" | field rss_mib)"
done
if [ -f bench/fbank.sh ]; then bash bench/fbank.sh; fi
