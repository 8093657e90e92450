#!/usr/bin/env bash
# `make bench`: petal and PyTorch side by side, same config and threads, in
# the same run; the CPU's FMA peak and a large GEMM on petal's engine are
# measured by petal bench itself.
#   BENCH_METHODS="full lora ..." BENCH_SIZE=base BENCH_THREADS=2 BENCH_STEPS=5 (defaults: every method)
#   BENCH_REPEAT=R   run each side R times, taking turns, and keep its fastest run (the machine is shared)
#   BENCH_BF16=0     skip the bf16-backbone lines
#   BENCH_TORCH_CORETYPE=X  PyTorch's OpenBLAS runs kernel set X (OPENBLAS_CORETYPE for the
#                    PyTorch process only). Default: the environment's OPENBLAS_CORETYPE
#                    where it sets one; where it does not, the CPU's best kernel set
#                    (SkylakeX with AVX-512, Haswell with AVX2): OpenBLAS 0.3.21 does not
#                    know recent CPUs and falls back to SSE3 kernels, 4-8x slower, which
#                    would make the peer's baseline an accident of the environment
#   BENCH_LONG=0     skip the long-clip lines; BENCH_LONG_STEPS=S their timed steps (default 2)
#   BENCH_SHARE=0    skip the one-backbone-per-node line (bench/share.sh: PSS of 4 processes)
#   BENCH_SWEEP=0    skip the sweep machinery's lines (bench/sweep.sh; SWEEP_DEMO=0 skips
#                    its minutes-long demo study, SWEEP_SHARE=0 its worker-rank memory line)
# Then the linear-probing line (epoch 1, which fills the encoder-output cache,
# against the mean of epochs 2-4).
# One line per method and dtype:
#   bench method=M frames=T batch=B dtype=fp32|bf16 engine=E samples_per_s=X
#         torch_samples_per_s=Y ratio=X/Y [vs_fp32=X/X_fp32] gflops=G exec_gflops=E
#         peak_gflops=P bf16_peak_gflops=P16 bf16_peak_isa=I peak_frac=E/(P or P16)
#         sgemm_gflops=S sgemm_frac=G/S rss_mib=R torch_rss_mib=TR rss_ratio=R/TR act_mib=A
#         kept_mib=K cpu_util=U cpu_s_per_step=C torch_cpu_util=TU torch_blas=LIB
#         torch_blas_core=CORE
# fp32 lines also carry torch_peak_frac (PyTorch's model GFLOP/s over peak_gflops) and
# max_fp32_ratio = 1 / torch_peak_frac: the ratio to PyTorch that an fp32 step doing the
# same FLOPs would reach at 100% of the FMA peak, the ceiling of any fp32 engine here.
# gflops counts the model's FLOPs (each GEMM the step needs, once); exec_gflops also
# counts what petal recomputes to save memory; peak_gflops is the CPU's float32 FMA
# peak (register-only AVX-512 loop, AVX2 without AVX-512) on the same threads,
# bf16_peak_gflops its bf16 dot-product peak (AMX tiles, else AVX512-BF16), both
# timed per thread by CPU clock (best of 12 windows); peak_frac divides by the
# limit of the line's dtype (fp32 lines by peak_gflops, bf16 lines by bf16_peak_gflops);
# engine is petal's GEMM engine (PETAL_GEMM), torch_blas the BLAS library the
# PyTorch process mapped (read from its /proc/<pid>/maps) and its OpenBLAS kernel
# set; cpu_util is petal's CPU time over wall time x threads (below 1: the cores
# were shared with other work). PyTorch runs on the OpenMP OpenBLAS (LD_LIBRARY_PATH below; torch_bench.py
# refuses the pthread build). bf16 lines (model.dtype bf16: frozen backbone GEMM
# weights in bf16) start from a random ViT-B backbone file through the node-wide
# images (one warm-up process builds them first); they share the fp32 line's
# PyTorch figure. Full fine-tuning has no frozen weight, so no bf16 line.
# Then the long-clip lines: Pfeiffer adapter, 500 frames (590 tokens), petal at
# batch 32, PyTorch at batch 8 (it needs about 20 GiB at 32), with torch_batch=8.
set -euo pipefail
cd "$(dirname "$0")/.."
methods=${BENCH_METHODS:-full linear bitfit lora adapter_pfeiffer adapter_houlsby conformer prompt_deep prefix soft_moa dense_moa}
size=${BENCH_SIZE:-base}
threads=${BENCH_THREADS:-2}
steps=${BENCH_STEPS:-5}
frames=${BENCH_FRAMES:-100}
batch=${BENCH_BATCH:-8}
repeat=${BENCH_REPEAT:-1}
bf16=${BENCH_BF16:-1}
grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo || bf16=0
openmp_blas=/usr/lib/$(gcc -print-multiarch)/openblas-openmp
if [ -z "${BENCH_TORCH_CORETYPE:-}" ] && [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then BENCH_TORCH_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then BENCH_TORCH_CORETYPE=Haswell; fi
fi
work=$(mktemp -d /tmp/petal-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN{printf "%.2f", x/y}'; }

# torch <options>: one run of the PyTorch side
torch() {
  if [ -n "${BENCH_TORCH_CORETYPE:-}" ]; then
    OPENBLAS_CORETYPE=$BENCH_TORCH_CORETYPE LD_LIBRARY_PATH=$openmp_blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
      /usr/bin/python3 bench/torch_bench.py "$@"
  else
    LD_LIBRARY_PATH=$openmp_blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} /usr/bin/python3 bench/torch_bench.py "$@"
  fi
}

# emit <petal line> <torch line> <petal batch> <torch batch> [<fp32 samples/s>]
emit() {
  local p=$1 t=$2 pb=$3 tb=$4 x32=${5:-} x y extra=""
  x=$(echo "$p" | field samples_per_s); y=$(echo "$t" | field samples_per_s)
  [ "$pb" = "$tb" ] || extra=" torch_batch=$tb"
  [ -z "$x32" ] || extra="$extra vs_fp32=$(ratio "$x" "$x32")"
  # PyTorch's model GFLOP/s (its samples/s x the model's FLOPs per sample) over the
  # fp32 peak, and the ratio an fp32 step of the same FLOPs at 100% of the peak would reach
  local tpf
  tpf=$(awk -v g="$(echo "$p" | field gflops)" -v x="$x" -v y="$y" -v pk="$(echo "$p" | field peak_gflops)" \
        'BEGIN{printf "%.3f", g / x * y / pk}')
  [ -n "$x32" ] || extra="$extra torch_peak_frac=$tpf max_fp32_ratio=$(ratio 1 "$tpf")"
  echo "bench method=$m frames=$(echo "$p" | field frames) batch=$pb" \
       "dtype=$(echo "$p" | field dtype) engine=$(echo "$p" | field engine)" \
       "samples_per_s=$x torch_samples_per_s=$y ratio=$(ratio "$x" "$y")$extra" \
       "gflops=$(echo "$p" | field gflops) exec_gflops=$(echo "$p" | field exec_gflops)" \
       "peak_gflops=$(echo "$p" | field peak_gflops)" \
       "bf16_peak_gflops=$(echo "$p" | field bf16_peak_gflops) bf16_peak_isa=$(echo "$p" | field bf16_peak_isa)" \
       "peak_frac=$(echo "$p" | field peak_frac)" \
       "sgemm_gflops=$(echo "$p" | field sgemm_gflops) sgemm_frac=$(echo "$p" | field sgemm_frac)" \
       "rss_mib=$(echo "$p" | field rss_mib) torch_rss_mib=$(echo "$t" | field rss_mib)" \
       "rss_ratio=$(ratio "$(echo "$p" | field rss_mib)" "$(echo "$t" | field rss_mib)")" \
       "act_mib=$(echo "$p" | field act_mib) kept_mib=$(echo "$p" | field kept_mib)" \
       "cpu_util=$(echo "$p" | field cpu_util) cpu_s_per_step=$(echo "$p" | field cpu_s_per_step)" \
       "torch_cpu_util=$(echo "$t" | field cpu_util)" \
       "torch_blas=$(echo "$t" | field blas) torch_blas_core=$(echo "$t" | field blas_core)"
}

# faster <line a> <line b>: the one with more samples/s (a on ties and when b is empty)
faster() {
  if [ -n "$2" ] && awk -v a="$(echo "$1" | field samples_per_s)" -v b="$(echo "$2" | field samples_per_s)" \
       'BEGIN{exit !(b > a)}'; then echo "$2"; else echo "$1"; fi
}

# line <method> <frames> <petal batch> <torch batch> <steps>: the fp32 line, then the bf16 one.
# With BENCH_REPEAT=R the runs take turns (petal fp32, PyTorch, petal bf16, petal fp32, ...),
# so that a slow spell of the shared machine falls on every side, and each keeps its fastest.
line() {
  local m=$1 f=$2 pb=$3 tb=$4 st=$5 p="" t="" p16="" bb=""
  if [ "$bf16" = 1 ] && [ "$m" != full ]; then
    bb=$work/backbone-$f.h5
    if [ ! -f "$bb" ]; then  # the backbone file, its node-wide images built once
      ./petal model init --size "$size" --frames "$f" --out "$bb" >/dev/null
      ./petal bench --method linear --size "$size" --threads "$threads" --steps 1 --batch 1 \
        --frames "$f" --dtype bf16 --backbone "$bb" --backbone-cache "$work/cache" >/dev/null
    fi
  fi
  for _ in $(seq "$repeat"); do
    p=$(faster "$(./petal bench --method "$m" --size "$size" --threads "$threads" --steps "$st" \
                  --frames "$f" --batch "$pb")" "$p")
    t=$(faster "$(torch --method "$m" --size "$size" --threads "$threads" --steps "$st" \
                  --frames "$f" --batch "$tb")" "$t")
    [ -z "$bb" ] || p16=$(faster "$(./petal bench --method "$m" --size "$size" --threads "$threads" \
                  --steps "$st" --frames "$f" --batch "$pb" --dtype bf16 --backbone "$bb" \
                  --backbone-cache "$work/cache")" "$p16")
  done
  emit "$p" "$t" "$pb" "$tb"
  [ -z "$bb" ] || emit "$p16" "$t" "$pb" "$tb" "$(echo "$p" | field samples_per_s)"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(nproc) cores, threads=$threads size=$size repeat=$repeat load=$(cut -d' ' -f1-3 /proc/loadavg)" \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}" \
     "torch OPENBLAS_CORETYPE=${BENCH_TORCH_CORETYPE:-${OPENBLAS_CORETYPE:-unset}}"
for m in $methods; do line "$m" "$frames" "$batch" "$batch" "$steps"; done
if [ "${BENCH_LONG:-1}" != 0 ]; then
  line adapter_pfeiffer 500 32 8 "${BENCH_LONG_STEPS:-2}"
fi
# Linear probing through the feature cache of encoder outputs: epoch 1 runs the
# frozen encoder over every example once, later epochs train the head alone.
lp=$(./petal train --synthetic --set model.size="$size" --set features.mel_bins=128 \
       --set features.frames="$frames" --method linear --epochs 4 --batch "$batch" \
       --threads "$threads" --backbone-cache off)
echo "$lp" | awk -v f="$frames" -v b="$batch" '
  /^epoch / { for (i = 1; i <= NF; i++) if ($i ~ /^seconds=/) { s = substr($i, 9); n++; if (n == 1) first = s; else later += s } }
  END { later /= (n - 1); printf "bench linear_probe frames=%s batch=%s first_epoch_s=%.3f later_epoch_s=%.4f ratio=%.0f\n", f, b, first, later, first / (later > 0 ? later : 1e-4) }'
if [ "${BENCH_SHARE:-1}" != 0 ]; then bash bench/share.sh; fi
bash bench/fbank.sh
if [ "${BENCH_SWEEP:-1}" != 0 ]; then bash bench/sweep.sh; fi
