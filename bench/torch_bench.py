"""PyTorch training-step throughput for the AST, the baseline petal's C core is
compared with. Float32, the reference optimizer (AdamW + cosine), the method's
trainable set frozen the ordinary PyTorch way (requires_grad=False, no manual
no_grad), one warm-up step, then --steps timed steps. Methods are the named
configs of tests/torch_ast.py PRESETS: full linear bitfit lora (q,v rr 64 alpha 8)
adapter_pfeiffer adapter_houlsby (rr 64, parallel before) conformer (Pfeiffer,
rr 64, kernel 31) prompt_deep (P 24) prefix (P 24) soft_moa (N 4, S 1, rr 64, FFN)
dense_moa (N 4, rr 64, FFN); the backbone is random, the method's own tensors keep
their documented init. Prints exactly one line:

  torch method=<m> frames=<T> batch=<B> samples_per_s=<x> rss_mib=<peak RSS MiB>
        cpu_util=<CPU time of the steps / (wall time x threads)>
        blas=<the BLAS library this process loaded> blas_core=<OpenBLAS's kernel set>

The BLAS library is read from this process's /proc/<pid>/maps after the steps:
PyTorch runs its GEMMs there. The pthread OpenBLAS is refused (exit 2): its own
thread pool fights PyTorch's OpenMP threads, which halves PyTorch's speed and
made an earlier baseline look slower than it is (bench/run.sh points
LD_LIBRARY_PATH at the OpenMP build).
"""

import ctypes

import argparse
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_ast import PRESETS, SIZES, ASTModel, _init_random, config_for, loss_fn, make_optimizer, set_trainable  # noqa: E402,E501


def loaded_blas():
    """(path, OpenBLAS core name or '-') of the BLAS library mapped into this process."""
    libs = []
    with open(f"/proc/{os.getpid()}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] not in libs:
                name = os.path.basename(parts[5])
                if name.startswith(("libopenblas", "libblas", "libmkl", "libblis")):
                    libs.append(parts[5])
    if not libs:
        return "none", "-"
    # The implementation (libopenblas*.so) over the libblas.so.3 front it sits behind.
    libs.sort(key=lambda p: not os.path.basename(p).startswith(("libopenblas", "libmkl", "libblis")))
    path, core = libs[0], "-"
    if "openblas" in os.path.basename(path):
        try:
            fn = ctypes.CDLL(path).openblas_get_corename
            fn.restype = ctypes.c_char_p
            core = fn().decode()
        except (OSError, AttributeError):
            pass
    return path, core


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", required=True, choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--frames", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--size", required=True, choices=sorted(SIZES))
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    if a.batch < 1 or a.steps < 1 or a.threads < 1:
        ap.error("--batch, --steps and --threads must be >= 1")

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = config_for(a.size, frames=a.frames)
    if cfg.t_dim < 1:
        ap.error(f"--frames must be >= {cfg.patch}")
    model = ASTModel(cfg, PRESETS[a.method])
    _init_random(model, torch.Generator().manual_seed(0), std_tok=0.02, which="backbone")
    model.train()
    params = set_trainable(model)
    opt, sched = make_optimizer(params, lr=1e-4, steps=a.steps + 1)
    x = torch.randn(a.batch, cfg.frames, cfg.F)
    y = torch.randint(0, cfg.K, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        return loss

    step()  # warm-up: allocator, optimizer state, thread pool
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        loss = step()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    if not torch.isfinite(loss):
        sys.stderr.write(f"torch_bench: non-finite loss {loss.item()}\n")
        return 1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    blas, core = loaded_blas()
    if "pthread" in blas:
        sys.stderr.write(f"torch_bench: PyTorch loaded the pthread OpenBLAS ({blas}); its thread pool "
                         "fights PyTorch's OpenMP threads. Point LD_LIBRARY_PATH at the OpenMP build "
                         "(/usr/lib/<arch>/openblas-openmp) or switch the libblas.so.3 alternative.\n")
        return 2
    print(f"torch method={a.method} frames={a.frames} batch={a.batch} "
          f"samples_per_s={a.batch * a.steps / dt:.3f} rss_mib={rss:.1f} cpu_util={cpu / (dt * a.threads):.2f} "
          f"blas={blas} blas_core={core}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
