"""Writes OUTDIR/ast_tiny.h5 and OUTDIR/ast_methods.h5: the PyTorch answers the C
core is checked against.

    /usr/bin/python3 tests/torch_ref.py tests/fixtures      (what `make fixtures` runs)

Inputs and parameters are stored as float32; every expected value is computed in
float64 from exactly those float32 values, so it is the exact answer for the C
side's inputs. Strings are fixed-length ASCII attributes, integers int32, reals
float64. Look tensors up by name (h5py lists groups alphabetically: layer.10 < layer.2).

ast_tiny.h5 (the backbone methods). Layout (all names as in tests/torch_ast.py):
  /            attrs C L NH MLP F frames patch fstride tstride K B (int32), ln_eps (float64)
  /input/fbank   float32 (B, frames, F)      /input/labels  int32 (B)
  /params/<name> float32, PyTorch shape, every parameter
  /<case>        attrs method pool (fixed-length ASCII), lr weight_decay beta1 beta2 eps
                 (float64), steps (int32); datasets:
      logits (B, K), loss (), traj (steps,) loss before each optimizer step,
      lr_sched (steps,) lr used by each step (float64); grads/<name> (trainable only)
      and final/<name> after `steps` AdamW + cosine steps (float32: computed in
      float64 and rounded once, far inside the 1e-3 tolerance, half the file size).
grads/encoder.layer.N.attention.attention.key.bias is zero analytically (softmax
ignores a per-query constant, and q.b_k is one); the stored values are float64
round-off (~1e-17), so compare that tensor absolutely, not by relative error.
The file is ~3 MB: three `full*` groups each hold grads + final of all ~118k
parameters.

ast_methods.h5 (every PETL method of docs/METHODS.md, on the same backbone,
input and labels as ast_tiny.h5; base "linear" everywhere):
  /              the same root attrs, /input/*, and /params/<name> = the backbone
  /<case>        attrs:
      method      JSON of the complete method config (torch_ast.normalize_method)
      base, pool  strings; tokens (int32) = tokens per example (1 + P + NP with prompts)
      lr weight_decay beta1 beta2 eps (float64), steps (int32)
      flat settings, only for the hooks the case has:
        lora_targets (str, subset of "qkvo" in that order), lora_rank (int32, the
          effective r), lora_rr (int32, 0 when sized by rank), lora_alpha,
          lora_scale (float64, alpha/rr or alpha/rank), lora_init (str)
        adapter_block ("bottleneck" | "conformer"), adapter_type ("pfeiffer" |
          "houlsby") or adapter_location ("mhsa" | "ffn") -- whichever the config
          gives, adapter_conf, adapter_position (str), adapter_residual (int32 0/1),
          adapter_dim (int32, the effective D), adapter_rr (int32, 0 when sized by
          dim), adapter_init (str), adapter_seq_add (int32 1, only when set);
          conformer only: conformer_kernel (int32, even
          or odd), adapter_norm ("applied" | "discarded"), conformer_ln_eps,
          conformer_bn_eps, conformer_bn_momentum (float64)
        prompt_tokens, prompt_deep (int32)
        prefix_tokens (int32)
        moa_kind ("dense" | "soft"), moa_experts (int32), moa_slots (int32, soft
          only), moa_location (str), moa_dim (int32, effective), moa_rr (int32, 0
          when sized by dim), moa_init (str)
    datasets:
      params/<name>  float32, EVERY tensor of the case's table: backbone parameters
                     (HDF5 hard links to /params/<name>, stored once), the method's
                     own parameters, and BatchNorm running_mean / running_var.
                     Method tensors are random (non-neutral: LoRA A and B, adapter
                     up, ... all nonzero) so that every gradient is informative.
      logits (B, K), loss (), traj (steps,), lr_sched (steps,)  float64, training mode
      grads/<name>   float32, every trainable tensor, at the initial parameters
      final/<name>   float32, every trainable tensor after `steps` AdamW + cosine
                     steps; Conformer cases also final/<...>.bn.running_{mean,var}
                     (updated once per training forward, i.e. `steps` times)
      eval_logits (B, K) float64, Conformer cases: eval mode (running stats) after
                     the steps
Analytic zeros: in the Conformer cases grads/<...>.dw.bias is zero (training-mode
BatchNorm subtracts the per-channel batch mean, so a per-channel constant before it
cancels); the stored values are round-off: compare absolutely. dw.bias still moves
(weight decay) and still shifts running_mean, so final/ and eval_logits see it.
"""

import json
import os
import sys
import zlib

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ast import (ASTModel, _init_random, bottleneck_size,  # noqa: E402
                       config_for, load_backbone, lora_scale, loss_fn, make_optimizer,
                       set_trainable, token_count)

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

# ast_methods.h5: (group, method config), lr 1e-2 for all. The tiny model has
# T = 10 tokens, hence the Conformer kernel 5 (the default is 31). Pooling: the
# prompt cases name theirs; prefix uses cls and combo_prompt_adapter
# prompts+speech so that every pooling mode is covered once.
METHOD_LR = 1e-2
METHOD_CASES = [
    ("lora_qv_rank", {"lora": {"targets": "qv", "rank": 4, "alpha": 8}}),
    ("lora_qkvo_rr", {"lora": {"targets": "qkvo", "rr": 16, "alpha": 8}}),
    ("adapter_pfeiffer", {"adapter": {"type": "pfeiffer", "conf": "parallel",
                                      "position": "before", "rr": 16}}),
    ("adapter_houlsby", {"adapter": {"type": "houlsby", "conf": "parallel",
                                     "position": "before", "residual": True, "rr": 16}}),
    ("adapter_seq_after", {"adapter": {"type": "pfeiffer", "conf": "sequential",
                                       "position": "after", "residual": True, "rr": 16}}),
    ("adapter_seq_before", {"adapter": {"location": "mhsa", "conf": "sequential",
                                        "position": "before", "residual": True, "rr": 16}}),
    ("adapter_par_after", {"adapter": {"location": "mhsa", "conf": "parallel",
                                       "position": "after", "rr": 16}}),
    ("conformer", {"adapter": {"block": "conformer", "type": "pfeiffer", "rr": 16, "kernel": 5}}),
    # even kernels (padding="same": (k-1)//2 left, k//2 right), and the reference's
    # Conformer: its LayerNorm discarded (no gradient, never updated), default pw2 init
    # the reference's ablation "sequential before": part = S(a) + a, a = A(ln)
    ("adapter_seq_before_add", {"adapter": {"location": "ffn", "conf": "sequential",
                                            "position": "before", "seq_add": True, "rr": 16}}),
    ("conformer_even", {"adapter": {"block": "conformer", "type": "houlsby", "rr": 16,
                                    "kernel": 4}}),
    ("conformer_reference", {"adapter": {"block": "conformer", "type": "pfeiffer", "rr": 16,
                                         "kernel": 8, "norm": "discarded",
                                         "init": "reference"}}),
    ("prompt_shallow", {"prompt": {"tokens": 3}, "pool": "all"}),
    ("prompt_deep", {"prompt": {"tokens": 3, "deep": True}, "pool": "prompts"}),
    ("prompt_deep_speech", {"prompt": {"tokens": 2, "deep": True}, "pool": "speech"}),
    ("prefix", {"prefix": {"tokens": 4}, "pool": "cls"}),
    ("dense_moa", {"moa": {"kind": "dense", "experts": 3, "location": "ffn", "dim": 8}}),
    ("soft_moa", {"moa": {"kind": "soft", "experts": 2, "slots": 2, "location": "ffn", "dim": 8}}),
    ("combo_lora_adapter", {"lora": {"targets": "qv", "rank": 4, "alpha": 8},
                            "adapter": {"type": "pfeiffer", "rr": 16}}),
    ("combo_prompt_adapter", {"prompt": {"tokens": 2, "deep": True}, "pool": "prompts+speech",
                              "adapter": {"type": "houlsby", "rr": 16}}),
]


def run_case(model, fbank, labels, lr):
    """`model` (float64, trainable set applied) trains STEPS steps in training mode."""
    train = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    x = fbank.double()
    model.train()
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


def _write_root(f, cfg, fbank, labels, params32):
    for k in ("C", "L", "NH", "MLP", "F", "frames", "patch", "fstride", "tstride", "K"):
        f.attrs[k] = np.int32(getattr(cfg, k))
    f.attrs["B"] = np.int32(B)
    f.attrs["ln_eps"] = np.float64(cfg.ln_eps)
    f.create_dataset("input/fbank", data=fbank.numpy())
    f.create_dataset("input/labels", data=labels.numpy().astype(np.int32))
    for n, t in params32.items():
        f.create_dataset(f"params/{n}", data=t.numpy())


def _write_run(g, r, lr):
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


def flat_attrs(cfg, m):
    """The normalized method config as flat HDF5 attributes (see the docstring)."""
    a = {"base": m["base"], "pool": m["pool"], "tokens": token_count(cfg, m)}
    if "lora" in m:
        s = m["lora"]
        a.update(lora_targets=s["targets"], lora_rank=bottleneck_size(cfg.C, s, "rank"),
                 lora_rr=s.get("rr", 0), lora_alpha=float(s["alpha"]),
                 lora_scale=lora_scale(s), lora_init=s["init"])
    if "adapter" in m:
        s = m["adapter"]
        a["adapter_block"] = s["block"]
        if "type" in s:
            a["adapter_type"] = s["type"]
        else:
            a["adapter_location"] = s["location"]
        a.update(adapter_conf=s["conf"], adapter_position=s["position"],
                 adapter_residual=int(s["residual"]), adapter_dim=bottleneck_size(cfg.C, s, "dim"),
                 adapter_rr=s.get("rr", 0))
        a["adapter_init"] = s["init"]
        if s["seq_add"]:
            a["adapter_seq_add"] = 1
        if s["block"] == "conformer":
            a.update(conformer_kernel=s["kernel"], adapter_norm=s["norm"], conformer_ln_eps=1e-5,
                     conformer_bn_eps=1e-5, conformer_bn_momentum=0.1)
    if "prompt" in m:
        a.update(prompt_tokens=m["prompt"]["tokens"], prompt_deep=int(m["prompt"]["deep"]))
    if "prefix" in m:
        a["prefix_tokens"] = m["prefix"]["tokens"]
    if "moa" in m:
        s = m["moa"]
        a.update(moa_kind=s["kind"], moa_experts=s["experts"], moa_location=s["location"],
                 moa_dim=bottleneck_size(cfg.C, s, "dim"), moa_rr=s.get("rr", 0),
                 moa_init=s["init"])
        if s["kind"] == "soft":
            a["moa_slots"] = s["slots"]
    return a


def _set_attr(g, k, v):
    if isinstance(v, str):
        g.attrs[k] = np.string_(v)
    elif isinstance(v, (bool, int)):
        g.attrs[k] = np.int32(v)
    else:
        g.attrs[k] = np.float64(v)


def write_tiny(path, cfg, params32, fbank, labels):
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        _write_root(f, cfg, fbank, labels, params32)
        for group, method, pool, lr in CASES:
            model = ASTModel(config_for("tiny", pool=pool))
            model.load_state_dict(params32)
            model.double()
            set_trainable(model, method)
            r = run_case(model, fbank, labels, lr)
            g = f.create_group(group)
            g.attrs["method"] = np.string_(method)
            g.attrs["pool"] = np.string_(pool)
            _write_run(g, r, lr)
            print(f"{group:14s} method={method:6s} pool={pool:8s} loss={r['loss']:.6f} "
                  f"traj[-1]={r['traj'][-1]:.6f} trainable={len(r['grads'])}")
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def write_methods(path, cfg, params32, fbank, labels):
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        _write_root(f, cfg, fbank, labels, params32)
        for group, method in METHOD_CASES:
            model = ASTModel(cfg, method)
            load_backbone(model, params32)
            # Non-neutral method tensors, reproducible per case name.
            _init_random(model, torch.Generator().manual_seed(zlib.crc32(group.encode())),
                         which="hooks")
            state32 = {n: t.detach().clone() for n, t in model.state_dict().items()}
            assert all(t.dtype == torch.float32 for t in state32.values())
            model.double()
            set_trainable(model)
            for n, p in model.named_parameters():
                if not n.startswith(("layernorm.", "classifier.")) and p.requires_grad:
                    assert float(p.detach().abs().max()) > 0, f"{group}: {n} is all zero"
            r = run_case(model, fbank, labels, METHOD_LR)
            bufs = {n: b.detach().numpy().copy() for n, b in model.named_buffers()}
            g = f.create_group(group)
            m = model.method
            g.attrs["method"] = np.string_(json.dumps(m, sort_keys=True))
            for k, v in flat_attrs(cfg, m).items():
                _set_attr(g, k, v)
            for n, t in state32.items():
                if n in params32:
                    g[f"params/{n}"] = f[f"params/{n}"]      # hard link, stored once
                    assert torch.equal(t, params32[n])
                else:
                    g.create_dataset(f"params/{n}", data=t.numpy())
            _write_run(g, r, METHOD_LR)
            for n, v in bufs.items():
                g.create_dataset(f"final/{n}", data=v.astype(np.float32))
            if bufs:
                model.eval()
                with torch.no_grad():
                    g.create_dataset("eval_logits", data=model(fbank.double()).numpy())
            zeros = [n for n, v in r["grads"].items() if not np.abs(v).max() > 1e-12]
            print(f"{group:20s} loss={r['loss']:.6f} traj[-1]={r['traj'][-1]:.6f} "
                  f"trainable={len(r['grads'])} buffers={len(bufs)} "
                  f"zero-grad tensors={len(zeros)} {zeros if zeros else ''}")
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


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

    write_tiny(os.path.join(outdir, "ast_tiny.h5"), cfg, params32, fbank, labels)
    write_methods(os.path.join(outdir, "ast_methods.h5"), cfg, params32, fbank, labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
