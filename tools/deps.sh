#!/usr/bin/env bash
# Installs the Debian packages petal needs, only those that are missing.
# Libraries are looked up with pkg-config (oneDNN, which has no .pc file, by
# its header), programs with command -v.
#   tools/deps.sh          build + test dependencies
#   tools/deps.sh --torch  also PyTorch/torchaudio (fixtures and benchmarks)
set -euo pipefail

missing=()
need_pc() { pkg-config --exists "$1" 2>/dev/null || missing+=("$2"); }
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }

need_cmd pkg-config pkg-config
need_cmd cc gcc
need_cmd make make
# OpenBLAS's OpenMP build (one thread pool with petal's OpenMP loops).
PKG_CONFIG_LIBDIR="/usr/lib/$(gcc -print-multiarch 2>/dev/null)/openblas-openmp/pkgconfig" \
  pkg-config --exists openblas 2>/dev/null || missing+=(libopenblas-openmp-dev)
# oneDNN, the default GEMM engine (Debian ships no pkg-config file for it).
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || missing+=(libdnnl-dev)
need_pc fftw3f libfftw3-dev
need_pc yaml-0.1 libyaml-dev
need_pc hdf5 libhdf5-dev
need_pc ompi-c libopenmpi-dev
need_cmd mpirun openmpi-bin
need_pc sndfile libsndfile1-dev
need_pc samplerate libsamplerate0-dev
need_cmd sox sox
need_cmd espeak-ng espeak-ng
need_cmd h5dump hdf5-tools
need_pc libxxhash libxxhash-dev   # trial ids: XXH3 of the canonical settings
need_pc gsl libgsl-dev            # Sobol sequences for sampled sweeps
need_cmd gnuplot gnuplot-nox      # report figures
need_cmd chromium chromium        # the report test renders the HTML page headless
# the tests read stores the documented way (h5py, pandas) with Debian's python3
/usr/bin/python3 -c 'import h5py, pandas' 2>/dev/null || missing+=(python3-h5py python3-pandas)

if [ "${1:-}" = "--torch" ]; then
  /usr/bin/python3 -c 'import torch, torchaudio, h5py, numpy' 2>/dev/null ||
    missing+=(python3-torch python3-torchaudio python3-h5py python3-numpy)
fi

# make fuzz: clang with libFuzzer's runtime (libclang-rt-14-dev on Debian 12).
if [ "${1:-}" = "--fuzz" ]; then
  need_cmd clang clang
  clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep -q / ||
    missing+=(libclang-rt-14-dev)
fi
if [ "${1:-}" = "--valgrind" ]; then need_cmd valgrind valgrind; fi

[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages (${missing[*]}); run as root or install them" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
