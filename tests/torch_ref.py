"""Writes OUTDIR/ast_tiny.h5: the PyTorch answer the C core is checked against.

    /usr/bin/python3 tests/torch_ref.py tests/fixtures      (what `make fixtures` runs)

Inputs and parameters are stored as float32; every expected value is computed in
float64 from exactly those float32 values, so it is the exact answer for the C
side's inputs. Layout (all names as in tests/torch_ast.py):
  /            attrs C L NH MLP F frames patch fstride tstride K B (int32), ln_eps (float64)
  /input/fbank   float32 (B, frames, F)      /input/labels  int32 (B)
  /params/<name> float32, PyTorch shape, every parameter
  /<case>        attrs method pool (fixed-length ASCII), lr weight_decay beta1 beta2 eps
                 (float64), steps (int32); datasets:
      logits (B, K), loss (), traj (steps,) loss before each optimizer step,
      lr_sched (steps,) lr used by each step (float64); grads/<name> (trainable only)
      and final/<name> after `steps` AdamW + cosine steps (float32: computed in
      float64 and rounded once, far inside the 1e-3 tolerance, half the file size).

Look tensors up by name (h5py lists groups alphabetically: layer.10 < layer.2).
grads/encoder.layer.N.attention.attention.key.bias is zero analytically (softmax
ignores a per-query constant, and q.b_k is one); the stored values are float64
round-off (~1e-17), so compare that tensor absolutely, not by relative error.
The file is ~3 MB: three `full*` groups each hold grads + final of all ~118k
parameters.
"""

import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ast import (ASTModel, _init_random, config_for, loss_fn, make_optimizer,  # noqa: E402
                       set_trainable)

B = 3
STEPS = 5
OPT = dict(weight_decay=0.1, beta1=0.9, beta2=0.98, eps=1e-6)
# (group, method, pool, lr)
CASES = [
    ("full", "full", "all", 1e-3),
    ("linear", "linear", "all", 1e-2),
    ("bitfit", "bitfit", "all", 1e-2),
    ("full_cls", "full", "cls", 1e-3),
    ("full_cls_dist", "full", "cls_dist", 1e-3),
]


def run_case(cfg, params32, fbank, labels, method, pool, lr):
    model = ASTModel(config_for("tiny", pool=pool))
    model.load_state_dict(params32)
    model.double()
    train = set_trainable(model, method)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    x = fbank.double()

    opt, sched = make_optimizer(train, lr, STEPS, weight_decay=OPT["weight_decay"],
                                betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"])
    out = {"traj": [], "lr_sched": []}
    for step in range(STEPS):
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = loss_fn(logits, labels)
        loss.backward()
        if step == 0:   # forward / gradient at the initial parameters
            out["logits"] = logits.detach().numpy().copy()
            out["loss"] = loss.item()
            out["grads"] = {n: p.grad.numpy().copy()
                            for n, p in model.named_parameters() if p.requires_grad}
        out["traj"].append(loss.item())
        out["lr_sched"].append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    out["final"] = {n: p.detach().numpy().copy()
                    for n, p in model.named_parameters() if p.requires_grad}
    assert sorted(out["grads"]) == sorted(names)
    return out


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: torch_ref.py OUTDIR\n")
        return 2
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    cfg = config_for("tiny")
    gen = torch.Generator().manual_seed(20240601)
    model = ASTModel(cfg)                       # float32
    _init_random(model, gen)
    params32 = {n: p.detach().clone() for n, p in model.state_dict().items()}
    fbank = torch.randn(B, cfg.frames, cfg.F, generator=gen, dtype=torch.float32)
    labels = torch.tensor([1, 4, 2], dtype=torch.long)
    assert labels.numel() == B and int(labels.max()) < cfg.K

    path = os.path.join(outdir, "ast_tiny.h5")
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        for k in ("C", "L", "NH", "MLP", "F", "frames", "patch", "fstride", "tstride", "K"):
            f.attrs[k] = np.int32(getattr(cfg, k))
        f.attrs["B"] = np.int32(B)
        f.attrs["ln_eps"] = np.float64(cfg.ln_eps)
        f.create_dataset("input/fbank", data=fbank.numpy())
        f.create_dataset("input/labels", data=labels.numpy().astype(np.int32))
        for n, t in params32.items():
            f.create_dataset(f"params/{n}", data=t.numpy())

        for group, method, pool, lr in CASES:
            r = run_case(cfg, params32, fbank, labels, method, pool, lr)
            g = f.create_group(group)
            g.attrs["method"] = np.string_(method)
            g.attrs["pool"] = np.string_(pool)
            g.attrs["lr"] = np.float64(lr)
            for k, v in OPT.items():
                g.attrs[k] = np.float64(v)
            g.attrs["steps"] = np.int32(STEPS)
            g.create_dataset("logits", data=r["logits"].astype(np.float64))
            g.create_dataset("loss", data=np.float64(r["loss"]))
            g.create_dataset("traj", data=np.array(r["traj"], dtype=np.float64))
            g.create_dataset("lr_sched", data=np.array(r["lr_sched"], dtype=np.float64))
            for n, v in r["grads"].items():
                g.create_dataset(f"grads/{n}", data=v.astype(np.float32))
            for n, v in r["final"].items():
                g.create_dataset(f"final/{n}", data=v.astype(np.float32))
            print(f"{group:14s} method={method:6s} pool={pool:8s} loss={r['loss']:.6f} "
                  f"traj[-1]={r['traj'][-1]:.6f} trainable={len(r['grads'])}")
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
