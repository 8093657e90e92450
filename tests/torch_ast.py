"""PyTorch reference of the Audio Spectrogram Transformer (AST) and of every PETL
method of docs/METHODS.md, which petal's C core must reproduce. Written to match
HuggingFace ASTModel numerically, with the same parameter names minus the
`audio_spectrogram_transformer.` prefix, plus a `classifier.dense` head. Used by
tests/torch_ref.py (fixtures) and bench/torch_bench.py (speed baseline).

    /usr/bin/python3 tests/torch_ast.py           self-checks (gradcheck per method, ...)
    /usr/bin/python3 tests/torch_ast.py --counts  ViT-B parameter counts per method

Shapes use the project's letters: B batch, T tokens (= NP + 2, or 1 + P + NP with
P prompt tokens), C channels, NH heads, HS head size (= C / NH), F mel bins,
L layers, K classes.

A method is configuration of the one model, a dict (see normalize_method):

    {"base": "linear",                       # full | linear | bitfit (trainable rows)
     "pool": "all",                          # all | cls | cls_dist | prompts | speech | prompts+speech
     "lora": {"targets": "qv", "rank": 4, "alpha": 8, "init": "reference"},
     "adapter": {"block": "bottleneck", "type": "pfeiffer", "conf": "parallel",
                 "position": "before", "residual": False, "rr": 64, "init": "petal"},
                 # conformer block also: "kernel": 31, "norm": "applied" | "discarded"
     "prompt": {"tokens": 25, "deep": True},
     "prefix": {"tokens": 24},
     "moa": {"kind": "soft", "experts": 4, "slots": 1, "location": "ffn", "rr": 64}}

Every key but "base" is optional; any subset of hooks combines. The hooks are
optional submodules of the one ASTModel / ASTLayer / Projection, created by the
config, never a subclass per method:
  - Projection (query/key/value/attention.output.dense) carries lora_A / lora_B;
  - ASTLayer carries adapter_{mhsa,ffn}, moa_{mhsa,ffn} and prefix, and
    ASTLayer.sublayer() places them around the attention / MLP sub-layer;
  - ASTModel carries prompt (token sequence, deep replacement, pooling).
The trainable set is a rule over parameter names (trainable_names).
"""

import json
import math
import sys
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as Fn


@dataclass(frozen=True)
class ASTConfig:
    C: int = 768        # hidden size
    L: int = 12         # encoder layers
    NH: int = 12        # attention heads
    MLP: int = 3072     # MLP hidden size
    F: int = 128        # mel bins
    frames: int = 1024  # time frames of the input fbank
    patch: int = 16     # square patch side
    fstride: int = 10
    tstride: int = 10
    K: int = 527        # classes
    pool: str = "all"   # default pooling when the method config names none
    ln_eps: float = 1e-12

    @property
    def HS(self):
        return self.C // self.NH

    @property
    def f_dim(self):
        return (self.F - self.patch) // self.fstride + 1

    @property
    def t_dim(self):
        return (self.frames - self.patch) // self.tstride + 1

    @property
    def NP(self):
        return self.f_dim * self.t_dim

    @property
    def T(self):
        return self.NP + 2


# Sizes used by the fixtures and the benchmark.
SIZES = {
    "tiny": ASTConfig(C=64, L=2, NH=4, MLP=256, F=32, frames=48, fstride=10, tstride=10, K=5),
    "small": ASTConfig(C=256, L=4, NH=4, MLP=1024, F=128, K=35),
    "base": ASTConfig(C=768, L=12, NH=12, MLP=3072, F=128, K=35),
}


def config_for(size, **overrides):
    return replace(SIZES[size], **overrides)


# ---------------------------------------------------------------- method configs

BASES = ("full", "linear", "bitfit", "bitfit_petal")
POOLS = ("all", "cls", "cls_dist", "prompts", "speech", "prompts+speech")
HOOKS = ("lora", "adapter", "prompt", "prefix", "moa")

# Defaults of every hook's keys (None: no default / absent unless given).
_DEFAULTS = {
    "lora": {"targets": "qv", "rank": None, "rr": None, "alpha": 8.0, "init": "reference"},
    "adapter": {"block": "bottleneck", "type": None, "location": None, "conf": "parallel",
                "position": "before", "residual": False, "seq_add": False, "dim": None,
                "rr": None,
                "init": None, "kernel": None, "norm": None},
    "prompt": {"tokens": None, "deep": False},
    "prefix": {"tokens": None},
    "moa": {"kind": None, "experts": 4, "slots": None, "location": "ffn", "dim": None,
            "rr": None, "init": "petal"},
}
DEFAULT_RR = 64
DEFAULT_KERNEL = 31

# Named configs: the benchmark's methods (bench/torch_bench.py --method NAME).
PRESETS = {
    "full": {"base": "full"},
    "linear": {"base": "linear"},
    "bitfit": {"base": "bitfit"},
    "lora": {"lora": {"targets": "qv", "rr": 64, "alpha": 8}},
    "adapter_pfeiffer": {"adapter": {"type": "pfeiffer", "rr": 64}},
    "adapter_houlsby": {"adapter": {"type": "houlsby", "rr": 64}},
    "conformer": {"adapter": {"block": "conformer", "type": "pfeiffer", "rr": 64, "kernel": 31}},
    # The paper's Table 1 as the reference code runs it (docs/METHODS.md "Paper presets").
    "bitfit_petal": {"base": "bitfit_petal"},
    "lora_paper": {"lora": {"targets": "qv", "rr": 128, "alpha": 8}},
    "adapter_pfeiffer_paper": {"adapter": {"type": "pfeiffer", "rr": 64, "init": "reference"}},
    "adapter_houlsby_paper": {"adapter": {"type": "houlsby", "rr": 64, "init": "reference"}},
    "conformer_paper_speech": {"adapter": {"block": "conformer", "type": "pfeiffer", "rr": 96,
                                           "kernel": 31, "init": "reference",
                                           "norm": "discarded"}},
    "conformer_paper_audio": {"adapter": {"block": "conformer", "type": "pfeiffer", "rr": 96,
                                          "kernel": 8, "init": "reference", "norm": "discarded"}},
    "prompt_shallow_paper": {"prompt": {"tokens": 300}},
    "prompt_deep_paper": {"prompt": {"tokens": 25, "deep": True}},
    "prefix_paper": {"prefix": {"tokens": 24}},
    "prompt_deep": {"prompt": {"tokens": 24, "deep": True}},
    "prefix": {"prefix": {"tokens": 24}},
    "soft_moa": {"moa": {"kind": "soft", "experts": 4, "slots": 1, "rr": 64, "location": "ffn"}},
    "dense_moa": {"moa": {"kind": "dense", "experts": 4, "rr": 64, "location": "ffn"}},
}


def _bad(msg):
    raise ValueError(f"method config: {msg}")


def _posint(spec, hook, key):
    v = spec[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        _bad(f"{hook}.{key} must be a positive integer, got {v!r}")


def _one_of(spec, hook, key, allowed):
    if spec[key] not in allowed:
        _bad(f"{hook}.{key} must be one of {allowed}, got {spec[key]!r}")


def _size_keys(spec, hook, key):
    """Exactly one of `key` (rank / dim) and rr; rr 64 when neither is given."""
    if spec[key] is not None and spec["rr"] is not None:
        _bad(f"{hook}: give {key} or rr, not both")
    if spec[key] is None and spec["rr"] is None:
        spec["rr"] = DEFAULT_RR
    _posint(spec, hook, key if spec[key] is not None else "rr")


def normalize_method(method=None, pool=None):
    """A method (preset name or dict) -> a complete, validated dict: every hook's
    keys filled with their defaults, absent ones dropped. `pool` is the default
    pooling when the config names none (the model passes cfg.pool). Idempotent;
    json.dumps of the result is what the fixtures store."""
    if method is None:
        method = {"base": "full"}
    if isinstance(method, str):
        if method not in PRESETS:
            _bad(f"unknown method {method!r}")
        method = PRESETS[method]
    if not isinstance(method, dict):
        _bad(f"expected a dict, got {type(method).__name__}")
    unknown = set(method) - {"base", "pool", *HOOKS}
    if unknown:
        _bad(f"unknown keys {sorted(unknown)}")
    out = {"base": method.get("base", "linear"), "pool": method.get("pool", pool or "all")}
    if out["base"] not in BASES:
        _bad(f"base must be one of {BASES}, got {out['base']!r}")
    for hook in HOOKS:
        if hook not in method or method[hook] is None:
            continue
        given = dict(method[hook])
        unknown = set(given) - set(_DEFAULTS[hook])
        if unknown:
            _bad(f"{hook}: unknown keys {sorted(unknown)}")
        spec = {**_DEFAULTS[hook], **given}
        if hook == "lora":
            t = spec["targets"]
            if not isinstance(t, str) or not t or any(c not in "qkvo" for c in t) or len(set(t)) != len(t):
                _bad(f"lora.targets must be a non-empty subset of 'qkvo', got {t!r}")
            spec["targets"] = "".join(c for c in "qkvo" if c in t)   # canonical order
            _size_keys(spec, hook, "rank")
            spec["alpha"] = float(spec["alpha"])
            _one_of(spec, hook, "init", ("reference", "paper"))
        elif hook == "adapter":
            _one_of(spec, hook, "block", ("bottleneck", "conformer"))
            if spec["type"] is not None and spec["location"] is not None:
                _bad("adapter: give type or location, not both")
            if spec["type"] is None and spec["location"] is None:
                spec["type"] = "pfeiffer"
            if spec["type"] is not None:
                _one_of(spec, hook, "type", ("pfeiffer", "houlsby"))
            else:
                _one_of(spec, hook, "location", ("mhsa", "ffn"))
            _one_of(spec, hook, "conf", ("parallel", "sequential"))
            _one_of(spec, hook, "position", ("before", "after"))
            if spec["residual"] not in (True, False, 0, 1):
                _bad(f"adapter.residual must be a boolean, got {spec['residual']!r}")
            spec["residual"] = bool(spec["residual"])
            if spec["seq_add"] not in (True, False, 0, 1):
                _bad(f"adapter.seq_add must be a boolean, got {spec['seq_add']!r}")
            spec["seq_add"] = bool(spec["seq_add"])
            if spec["seq_add"] and (spec["conf"], spec["position"]) != ("sequential", "before"):
                _bad("adapter.seq_add applies to conf sequential, position before only")
            _size_keys(spec, hook, "dim")
            if spec["init"] is None:
                spec["init"] = "petal"
            _one_of(spec, hook, "init", ("petal", "reference"))
            if spec["block"] == "bottleneck":
                if spec["kernel"] is not None:
                    _bad("adapter.kernel applies to block conformer only")
                if spec["norm"] is not None:
                    _bad("adapter.norm applies to block conformer only")
            else:
                if spec["kernel"] is None:
                    spec["kernel"] = DEFAULT_KERNEL
                _posint(spec, hook, "kernel")        # even k: PyTorch's padding="same"
                if spec["norm"] is None:
                    spec["norm"] = "applied"
                _one_of(spec, hook, "norm", ("applied", "discarded"))
        elif hook == "prompt":
            if spec["tokens"] is None:
                _bad("prompt.tokens is required")
            _posint(spec, hook, "tokens")
            if spec["deep"] not in (True, False, 0, 1):
                _bad(f"prompt.deep must be a boolean, got {spec['deep']!r}")
            spec["deep"] = bool(spec["deep"])
        elif hook == "prefix":
            if spec["tokens"] is None:
                _bad("prefix.tokens is required")
            _posint(spec, hook, "tokens")
            if spec["tokens"] % 2:
                _bad(f"prefix.tokens must be even (P/2 keys + P/2 values), got {spec['tokens']}")
        elif hook == "moa":
            _one_of(spec, hook, "kind", ("dense", "soft"))
            _posint(spec, hook, "experts")
            if spec["kind"] == "soft":
                if spec["slots"] is None:
                    spec["slots"] = 1
                _posint(spec, hook, "slots")
            elif spec["slots"] is not None:
                _bad("moa.slots applies to kind soft only")
            _one_of(spec, hook, "location", ("mhsa", "ffn"))
            _size_keys(spec, hook, "dim")
            _one_of(spec, hook, "init", ("petal", "reference"))
        out[hook] = {k: v for k, v in spec.items() if v is not None}
    if out["pool"] not in POOLS:
        _bad(f"pool must be one of {POOLS}, got {out['pool']!r}")
    if "prompt" in out and out["pool"] == "cls_dist":
        _bad("pool cls_dist needs the distillation token, which prompt tuning replaces")
    if "prompt" not in out and out["pool"] in ("prompts", "speech", "prompts+speech"):
        _bad(f"pool {out['pool']} needs prompt tuning")
    return out


def bottleneck_size(C, spec, key):
    """D (or r) of a hook: spec[key] if given, else round(C / rr) with Python's round
    (half to even, as the reference); 0 is an input error."""
    d = spec[key] if key in spec else round(C / spec["rr"])
    if d < 1:
        _bad(f"C / rr = {C}/{spec['rr']} rounds to 0")
    return d


def lora_scale(spec):
    """alpha / rr when sized by rr (the reference), alpha / rank when sized by rank."""
    return spec["alpha"] / (spec["rr"] if "rr" in spec else spec["rank"])


def adapter_locations(spec):
    if "location" in spec:
        return (spec["location"],)
    return ("ffn",) if spec["type"] == "pfeiffer" else ("mhsa", "ffn")


def hook_locations(method):
    """Sub-layers ('mhsa' / 'ffn') that carry an adapter or a MoA."""
    m = normalize_method(method)
    locs = set(adapter_locations(m["adapter"])) if "adapter" in m else set()
    if "moa" in m:
        locs.add(m["moa"]["location"])
    return locs


def token_count(cfg, method=None):
    m = normalize_method(method)
    return 1 + m["prompt"]["tokens"] + cfg.NP if "prompt" in m else cfg.T


def prompt_init_bound(cfg):
    """VPT's uniform bound for prompt and prefix vectors: sqrt(6 / (3 * 16 * 16 + C))."""
    return math.sqrt(6.0 / (3 * cfg.patch * cfg.patch + cfg.C))


# ---------------------------------------------------------------- embeddings

class ASTPatchEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.projection = nn.Conv2d(1, cfg.C, kernel_size=cfg.patch,
                                    stride=(cfg.fstride, cfg.tstride))

    def forward(self, fbank):
        # (B, frames, F) -> (B, 1, F, frames): frequency is the conv's height.
        x = fbank.unsqueeze(1).transpose(2, 3)
        x = self.projection(x)                 # (B, C, f_dim, t_dim)
        return x.flatten(2).transpose(1, 2)    # (B, NP, C), patch fi*t_dim+ti


class ASTEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        # Registration order follows HF so state_dict order matches it.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.C))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, cfg.C))
        self.patch_embeddings = ASTPatchEmbeddings(cfg)
        self.position_embeddings = nn.Parameter(torch.zeros(1, cfg.T, cfg.C))

    def forward(self, fbank, prompts=None):
        """(B, T, C). With prompts (1, P, C): [CLS + pos[0], prompts (no position
        embedding), patches + pos[2:]]; the distillation token and pos[1] go unused."""
        p = self.patch_embeddings(fbank)       # (B, NP, C)
        B = p.shape[0]
        if prompts is None:
            x = torch.cat([self.cls_token.expand(B, -1, -1),
                           self.distillation_token.expand(B, -1, -1), p], dim=1)
            return x + self.position_embeddings
        pos = self.position_embeddings
        return torch.cat([(self.cls_token + pos[:, :1]).expand(B, -1, -1),
                          prompts.expand(B, -1, -1), p + pos[:, 2:]], dim=1)


class Prompt(nn.Module):
    """prompt.embeddings (1, P, C); deep adds prompt.deep_embeddings (L-1, P, C)."""

    def __init__(self, cfg, spec):
        super().__init__()
        P, v = spec["tokens"], prompt_init_bound(cfg)
        self.P, self.deep = P, spec["deep"]
        self.embeddings = nn.Parameter(torch.empty(1, P, cfg.C).uniform_(-v, v))
        if self.deep:
            self.deep_embeddings = nn.Parameter(torch.empty(cfg.L - 1, P, cfg.C).uniform_(-v, v))


# ---------------------------------------------------------------- hooks

class Projection(nn.Linear):
    """nn.Linear (same parameters, same init) with an optional LoRA branch:
    P(u) = u W^T + b + s (u A^T) B^T, A = lora_A.weight (r, in), B = lora_B.weight (out, r)."""

    lora_scale = None

    def add_lora(self, r, scale, init):
        self.lora_A = nn.Linear(self.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, self.out_features, bias=False)
        self.lora_scale = float(scale)
        with torch.no_grad():
            if init == "reference":             # down 0, up kaiming (the reference's choice)
                nn.init.zeros_(self.lora_A.weight)
                nn.init.kaiming_uniform_(self.lora_B.weight, a=math.sqrt(5))
            else:                               # "paper": down kaiming, up 0
                nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
                nn.init.zeros_(self.lora_B.weight)

    def merged_weight(self):
        """W + s B A: the plain Linear weight equal to this projection (export)."""
        if self.lora_scale is None:
            return self.weight
        return self.weight + self.lora_scale * self.lora_B.weight @ self.lora_A.weight

    def forward(self, u):
        y = Fn.linear(u, self.weight, self.bias)
        if self.lora_scale is not None:
            y = y + self.lora_scale * self.lora_B(self.lora_A(u))
        return y


class Bottleneck(nn.Module):
    """A(u) = up(gelu(down(u))), down Linear(C, D), up Linear(D, C)."""

    def __init__(self, C, D, init):
        super().__init__()
        self.down = nn.Linear(C, D)             # default: kaiming_uniform a=sqrt(5)
        self.up = nn.Linear(D, C)
        with torch.no_grad():
            nn.init.zeros_(self.down.bias)
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)
            if init == "reference":
                nn.init.zeros_(self.down.weight)

    def forward(self, u):
        return self.up(Fn.gelu(self.down(u)))


class BatchNorm(nn.Module):
    """BatchNorm over every dim but 1 of (B, D, T): weight, bias parameters and
    running_mean, running_var buffers (no num_batches_tracked: momentum is fixed).
    Training: batch mean and biased variance, running stats updated with momentum
    using the unbiased variance; eval: running stats."""

    def __init__(self, D, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(D))
        self.bias = nn.Parameter(torch.zeros(D))
        self.register_buffer("running_mean", torch.zeros(D))
        self.register_buffer("running_var", torch.ones(D))

    def forward(self, x):
        return Fn.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             training=self.training, momentum=self.momentum, eps=self.eps)


class ConformerBlock(nn.Module):
    """LN -> pw1 (C -> 2D) -> GLU -> depthwise conv over tokens (kernel k, zero
    padding="same": (k-1)//2 left, k//2 right) -> BatchNorm -> SiLU -> pw2 (D -> C).
    init "petal": pw2 zero-initialised (neutral); "reference": torch's default.
    norm "discarded": the reference's LN, which exists but whose output is unused
    (its parameters get no gradient: trainable_rule leaves them out)."""

    def __init__(self, C, D, k, init="petal", norm="applied"):
        super().__init__()
        self.D, self.norm_applied = D, norm == "applied"
        self.norm = nn.LayerNorm(C, eps=1e-5)
        self.pw1 = nn.Linear(C, 2 * D)
        self.dw = nn.Conv1d(D, D, k, padding="same", groups=D)
        self.bn = BatchNorm(D)
        self.pw2 = nn.Linear(D, C)
        if init == "petal":
            with torch.no_grad():
                nn.init.zeros_(self.pw2.weight)
                nn.init.zeros_(self.pw2.bias)

    def forward(self, u):                       # (B, T, C)
        p = self.pw1(self.norm(u) if self.norm_applied else u)
        g = p[..., :self.D] * torch.sigmoid(p[..., self.D:])
        c = self.bn(self.dw(g.transpose(1, 2)))  # (B, D, T)
        return self.pw2(Fn.silu(c.transpose(1, 2)))


class MixtureOfAdapters(nn.Module):
    """N bottleneck experts, parallel-before. Dense: per-token softmax router.
    Soft: Soft-MoE slots Phi (C, N, S), dispatch softmax over tokens, combine
    softmax over (expert, slot)."""

    def __init__(self, C, spec):
        super().__init__()
        N, D = spec["experts"], bottleneck_size(C, spec, "dim")
        self.kind = spec["kind"]
        self.experts = nn.ModuleList([Bottleneck(C, D, spec["init"]) for _ in range(N)])
        if self.kind == "dense":
            self.router = nn.Linear(C, N)       # torch default init: U(+-1/sqrt(C))
        else:
            self.slots = nn.Parameter(torch.empty(C, N, spec["slots"]))
            nn.init.xavier_normal_(self.slots)  # std sqrt(2 / (N*S + C*S))

    def forward(self, ln):                      # (B, T, C)
        if self.kind == "dense":
            r = torch.softmax(self.router(ln), dim=-1)          # (B, T, N)
            out = 0
            for n, E in enumerate(self.experts):
                out = out + r[..., n:n + 1] * E(ln)
            return out
        B, T, _ = ln.shape
        _, N, S = self.slots.shape
        logits = torch.einsum("btc,cns->btns", ln, self.slots)
        dispatch = torch.softmax(logits, dim=1)                  # over tokens
        combine = torch.softmax(logits.reshape(B, T, N * S), dim=-1).reshape(B, T, N, S)
        xs = torch.einsum("btns,btc->bnsc", dispatch, ln)        # slot inputs
        ys = torch.stack([E(xs[:, n]) for n, E in enumerate(self.experts)], dim=1)
        return torch.einsum("btns,bnsc->btc", combine, ys)


class Prefix(nn.Module):
    """encoder.layer.N.prefix.{key,value} (1, P/2, C), inserted after the CLS key / value."""

    def __init__(self, cfg, spec):
        super().__init__()
        v = prompt_init_bound(cfg)
        self.key = nn.Parameter(torch.empty(1, spec["tokens"] // 2, cfg.C).uniform_(-v, v))
        self.value = nn.Parameter(torch.empty(1, spec["tokens"] // 2, cfg.C).uniform_(-v, v))


def _make_adapter(cfg, spec):
    D = bottleneck_size(cfg.C, spec, "dim")
    if spec["block"] == "conformer":
        mod = ConformerBlock(cfg.C, D, spec["kernel"], spec["init"], spec["norm"])
    else:
        mod = Bottleneck(cfg.C, D, spec["init"])
    # Placement is configuration, not parameters.
    mod.conf, mod.position, mod.residual = spec["conf"], spec["position"], spec["residual"]
    mod.seq_add = spec["seq_add"]
    return mod


# ---------------------------------------------------------------- encoder

class ASTSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.NH, self.HS = cfg.NH, cfg.HS
        self.query = Projection(cfg.C, cfg.C)
        self.key = Projection(cfg.C, cfg.C)
        self.value = Projection(cfg.C, cfg.C)

    def heads(self, x):
        # (B, T, C) -> (B, NH, T, HS); head h owns channels h*HS:(h+1)*HS.
        B, T, _ = x.shape
        return x.view(B, T, self.NH, self.HS).transpose(1, 2)

    def forward(self, x, prefix=None):
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        if prefix is not None:                  # keys/values [0, prefix, 1..]; queries unchanged
            B = x.shape[0]
            kp = self.heads(prefix.key.expand(B, -1, -1))
            vp = self.heads(prefix.value.expand(B, -1, -1))
            k = torch.cat([k[:, :, :1], kp, k[:, :, 1:]], dim=2)
            v = torch.cat([v[:, :, :1], vp, v[:, :, 1:]], dim=2)
        att = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.HS)  # (B, NH, T, T')
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v)               # (B, NH, T, HS)
        B, _, T, _ = y.shape
        return y.transpose(1, 2).reshape(B, T, self.NH * self.HS)


class ASTSelfOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Projection(cfg.C, cfg.C)

    def forward(self, x):
        return self.dense(x)


class ASTAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = ASTSelfAttention(cfg)
        self.output = ASTSelfOutput(cfg)

    def forward(self, x, prefix=None):
        return self.output(self.attention(x, prefix))


class ASTIntermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.C, cfg.MLP)

    def forward(self, x):
        return Fn.gelu(self.dense(x))          # exact (erf) GELU


class ASTOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.MLP, cfg.C)

    def forward(self, x):
        return self.dense(x)


class ASTLayer(nn.Module):
    """Pre-LN block: h = x + part_mhsa(LN1 x); out = h + part_ffn(LN2 h), where a
    part is the sub-layer (attention or MLP) with this layer's hooks around it."""

    def __init__(self, cfg, method=None):
        super().__init__()
        self.attention = ASTAttention(cfg)
        self.intermediate = ASTIntermediate(cfg)
        self.output = ASTOutput(cfg)
        self.layernorm_before = nn.LayerNorm(cfg.C, eps=cfg.ln_eps)
        self.layernorm_after = nn.LayerNorm(cfg.C, eps=cfg.ln_eps)
        m = normalize_method(method)
        if "lora" in m:
            spec = m["lora"]
            r, s = bottleneck_size(cfg.C, spec, "rank"), lora_scale(spec)
            sa = self.attention.attention
            proj = {"q": sa.query, "k": sa.key, "v": sa.value, "o": self.attention.output.dense}
            for t in spec["targets"]:
                proj[t].add_lora(r, s, spec["init"])
        if "adapter" in m:
            for loc in adapter_locations(m["adapter"]):
                setattr(self, "adapter_" + loc, _make_adapter(cfg, m["adapter"]))
        if "moa" in m:
            setattr(self, "moa_" + m["moa"]["location"], MixtureOfAdapters(cfg.C, m["moa"]))
        if "prefix" in m:
            self.prefix = Prefix(cfg, m["prefix"])

    def attention_sublayer(self, ln1):
        return self.attention(ln1, self._modules.get("prefix"))

    def mlp_sublayer(self, ln2):
        return self.output(self.intermediate(ln2))

    def sublayer(self, loc, ln):
        """The part added to the residual stream at 'mhsa' or 'ffn' (METHODS.md):
        the adapter placed as configured, then a MoA's part added (parallel-before)."""
        S = self.attention_sublayer if loc == "mhsa" else self.mlp_sublayer
        A = self._modules.get("adapter_" + loc)
        M = self._modules.get("moa_" + loc)
        if A is None:
            part = S(ln)
        elif A.conf == "parallel" and A.position == "before":
            part = S(ln) + A(ln)
            if A.residual:
                part = part + ln
        elif A.conf == "parallel":              # after
            s = S(ln)
            part = s + A(s)
            if A.residual:
                part = part + s
        elif A.position == "before":            # sequential
            a = A(ln)
            if A.residual:
                a = a + ln
            part = S(a) + a if A.seq_add else S(a)
        else:                                   # sequential after
            s = S(ln)
            part = A(s) + s if A.residual else A(s)
        if M is not None:
            part = part + M(ln)
        return part

    def forward(self, x):
        h = x + self.sublayer("mhsa", self.layernorm_before(x))
        return h + self.sublayer("ffn", self.layernorm_after(h))


class ASTEncoder(nn.Module):
    def __init__(self, cfg, method=None):
        super().__init__()
        self.layer = nn.ModuleList([ASTLayer(cfg, method) for _ in range(cfg.L)])

    def forward(self, x, deep=None):
        """deep (L-1, P, C): before every layer i >= 1 tokens 1..P become deep[i-1]."""
        for i, layer in enumerate(self.layer):
            if deep is not None and i >= 1:
                B, P = x.shape[0], deep.shape[1]
                x = torch.cat([x[:, :1], deep[i - 1:i].expand(B, -1, -1), x[:, 1 + P:]], dim=1)
            x = layer(x)
        return x


# ---------------------------------------------------------------- model

class ASTHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.C, cfg.K)

    def forward(self, x):
        return self.dense(x)


def pool_tokens(x, pool, P=0):
    """(B, T, C) after the final LayerNorm -> (B, C). P: prompt tokens (1..P)."""
    if pool == "all":
        return x.mean(dim=1)
    if pool == "cls":
        return x[:, 0]
    if pool == "cls_dist":                     # HF ASTModel.pooler_output
        return (x[:, 0] + x[:, 1]) / 2
    if pool in ("prompts", "speech", "prompts+speech") and P < 1:
        raise ValueError(f"pool {pool!r} needs prompt tokens")
    if pool == "prompts":
        return x[:, 1:1 + P].mean(dim=1)
    if pool == "speech":
        return x[:, 1 + P:].mean(dim=1)
    if pool == "prompts+speech":
        return x[:, 1:].mean(dim=1)
    raise ValueError(f"unknown pool mode {pool!r}")


class ASTModel(nn.Module):
    """The AST with the hooks of one method config (None: the plain backbone)."""

    def __init__(self, cfg, method=None):
        super().__init__()
        assert cfg.C % cfg.NH == 0, "C must be a multiple of NH"
        self.cfg = cfg
        self.method = normalize_method(method, cfg.pool)
        self.embeddings = ASTEmbeddings(cfg)
        self.encoder = ASTEncoder(cfg, self.method)
        self.layernorm = nn.LayerNorm(cfg.C, eps=cfg.ln_eps)
        self.classifier = ASTHead(cfg)
        if "prompt" in self.method:
            self.prompt = Prompt(cfg, self.method["prompt"])

    @property
    def P(self):
        return self.method["prompt"]["tokens"] if "prompt" in self.method else 0

    def tokens(self, fbank):
        prompt = self._modules.get("prompt")
        return self.embeddings(fbank, None if prompt is None else prompt.embeddings)

    def features(self, fbank):
        """Final-LayerNorm token states (B, T, C), i.e. HF last_hidden_state."""
        prompt = self._modules.get("prompt")
        deep = prompt.deep_embeddings if prompt is not None and prompt.deep else None
        return self.layernorm(self.encoder(self.tokens(fbank), deep))

    def forward(self, fbank):
        """fbank (B, frames, F) -> logits (B, K)."""
        return self.classifier(pool_tokens(self.features(fbank), self.method["pool"], self.P))


def loss_fn(logits, labels):
    return Fn.cross_entropy(logits, labels)    # mean over the batch


def load_backbone(model, state):
    """Loads a backbone state dict (no hook tensors) into a model with hooks."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [n for n in missing if not is_hook_name(n)]
    if bad or unexpected:
        raise KeyError(f"backbone mismatch: missing {bad}, unexpected {unexpected}")


# ---------------------------------------------------------------- methods

def _is_head_or_final_ln(name):
    return name.startswith("classifier.") or name.startswith("layernorm.")


# base -> predicate over parameter names (names as in ASTModel.named_parameters).
METHODS = {
    "full": lambda name: True,
    "linear": _is_head_or_final_ln,
    # The reference's BitFit: the bias of every Linear and LayerNorm (the final
    # LayerNorm's included, not its weight; not the patch projection's: a Conv2d)
    # plus the head.
    "bitfit": lambda name: ((name.endswith(".bias") and not name.startswith("embeddings."))
                            or name.startswith("classifier.")),
    # petal's earlier BitFit: every bias and the whole final LayerNorm.
    "bitfit_petal": lambda name: name.endswith(".bias") or _is_head_or_final_ln(name),
}

_HOOK_MARKERS = (".lora_A.", ".lora_B.", ".adapter_mhsa.", ".adapter_ffn.", ".moa_mhsa.",
                 ".moa_ffn.", ".prefix.")


def is_hook_name(name):
    """A tensor (parameter or buffer) owned by a PETL hook."""
    return name.startswith("prompt.") or any(m in name for m in _HOOK_MARKERS)


def is_inert_name(method, name):
    """A parameter that exists and counts as trainable (the reference's
    requires_grad) but never acts nor learns: the Conformer LayerNorm under
    adapter.norm "discarded"."""
    a = normalize_method(method).get("adapter")
    return (a is not None and a["block"] == "conformer" and a["norm"] == "discarded"
            and (".adapter_mhsa.norm." in name or ".adapter_ffn.norm." in name))


def trainable_rule(method):
    """Predicate over parameter names: the base's rows, plus, when any hook is
    configured, the hooks' rows, the final LN and the head, and layernorm_before /
    layernorm_after of every layer when an adapter or MoA sits at MHSA / FFN."""
    m = normalize_method(method)
    base = METHODS[m["base"]]
    if not any(h in m for h in HOOKS):
        return base
    locs = hook_locations(m)

    def rule(name):
        if is_inert_name(m, name):
            return False
        return (base(name) or is_hook_name(name) or _is_head_or_final_ln(name)
                or ("mhsa" in locs and ".layernorm_before." in name)
                or ("ffn" in locs and ".layernorm_after." in name))
    return rule


def trainable_names(model, method=None):
    """Trainable parameter names in named_parameters order; method defaults to the
    model's own config (a base name like "linear" gives that base alone)."""
    if isinstance(method, str) and method not in PRESETS:
        raise ValueError(f"unknown method {method!r}")
    rule = trainable_rule(model.method if method is None else method)
    return [n for n, _ in model.named_parameters() if rule(n)]


def set_trainable(model, method=None):
    """Freeze everything outside the method's trainable set; return the trainable
    parameters in named_parameters order."""
    keep = set(trainable_names(model, method))
    params = []
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)
        if n in keep:
            params.append(p)
    return params


def make_optimizer(params, lr, steps, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-6):
    """The reference recipe: AdamW (decay on every trainable tensor) + cosine over
    all steps; call sched.step() after every opt.step()."""
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=0.0)
    return opt, sched


def param_counts(cfg, method):
    """(trainable, total, buffers, paper) element counts; trainable includes the
    inert parameters the reference counts (is_inert_name); total counts
    parameters only (BatchNorm running stats are the separate `buffers` count);
    paper: trainable without the classifier and the final LayerNorm (linear
    probing: with them; BitFit keeps the final LayerNorm's bias)."""
    model = ASTModel(cfg, method)
    m = model.method
    keep = set(trainable_names(model))
    counted = {n: p.numel() for n, p in model.named_parameters()
               if n in keep or is_inert_name(m, n)}
    tr = sum(counted.values())
    total = sum(p.numel() for p in model.parameters())
    head = sum(v for n, v in counted.items()
               if n.startswith("classifier.")
               or (n.startswith("layernorm.")
                   and not (m["base"].startswith("bitfit") and n == "layernorm.bias")))
    paper = tr if head == tr else tr - head
    return tr, total, sum(b.numel() for b in model.buffers()), paper


# The counts the C side asserts (`petal model params`): ViT-B, frames 100, K 35.
COUNT_CASES = [
    ("lora_qv_rr64", {"lora": {"targets": "qv", "rr": 64, "alpha": 8}}),
    ("adapter_pfeiffer_rr64", {"adapter": {"type": "pfeiffer", "rr": 64}}),
    ("adapter_houlsby_rr64", {"adapter": {"type": "houlsby", "rr": 64}}),
    ("prompt_deep_P25", {"prompt": {"tokens": 25, "deep": True}, "pool": "all"}),
    ("prefix_P24", {"prefix": {"tokens": 24}}),
    ("conformer_pfeiffer_rr64_k31", {"adapter": {"block": "conformer", "type": "pfeiffer",
                                                 "rr": 64, "kernel": 31}}),
    ("soft_moa_N4_S1_rr64_ffn", {"moa": {"kind": "soft", "experts": 4, "slots": 1, "rr": 64,
                                         "location": "ffn"}}),
    ("dense_moa_N4_rr64_ffn", {"moa": {"kind": "dense", "experts": 4, "rr": 64,
                                       "location": "ffn"}}),
    ("bitfit_petal", "bitfit_petal"),
] + [(name, name) for name in ("lora_paper", "adapter_pfeiffer_paper", "adapter_houlsby_paper",
                               "conformer_paper_speech", "conformer_paper_audio",
                               "prompt_shallow_paper", "prompt_deep_paper", "prefix_paper")] + [
    ("conformer_houlsby_paper_speech",
     {"adapter": {**PRESETS["conformer_paper_speech"]["adapter"], "type": "houlsby"}}),
]


# (trainable, total) as docs/METHODS.md tabulates them; --counts asserts these.
EXPECTED_COUNTS = {
    "full": (85366307, 85366307),
    "linear": (28451, 85366307),
    "bitfit": (129059, 85366307),
    "bitfit_petal": (130595, 85366307),
    "lora_qv_rr64": (470819, 85808675),
    "adapter_pfeiffer_rr64": (277427, 85596851),
    "adapter_houlsby_rr64": (526403, 85827395),
    "prompt_deep_P25": (258851, 85596707),
    "prefix_P24": (249635, 85587491),
    "conformer_pfeiffer_rr64_k31": (411491, 85730915),
    "soft_moa_N4_S1_rr64_ffn": (1005923, 86325347),
    "dense_moa_N4_rr64_ffn": (1005971, 86325395),
}

# The paper's own counts (Table 1 of arXiv 2312.03694 v4, issue 18); --counts
# asserts these as `paper`.
EXPECTED_PAPER = {
    "bitfit": 102144,
    "lora_paper": 221184,
    "adapter_pfeiffer_paper": 248976,
    "adapter_houlsby_paper": 497952,
    "conformer_paper_speech": 270720,
    "conformer_houlsby_paper_speech": 541440,
    "conformer_paper_audio": 268512,
    "prompt_shallow_paper": 230400,
    "prompt_deep_paper": 230400,
    "prefix_paper": 221184,
}


def print_counts():
    cfg = config_for("base", frames=100)
    for name, method in [("full", "full"), ("linear", "linear"), ("bitfit", "bitfit")] + COUNT_CASES:
        tr, total, buf, paper = param_counts(cfg, method)
        print(f"{name:30s} tokens={token_count(cfg, method):3d} trainable={tr:9d} "
              f"total={total:9d} buffers={buf:4d} percent={100.0 * tr / total:.4f} "
              f"paper={paper:8d}")
        if name in EXPECTED_COUNTS:
            assert (tr, total) == EXPECTED_COUNTS[name], (name, EXPECTED_COUNTS[name])
        if name in EXPECTED_PAPER:
            assert paper == EXPECTED_PAPER[name], (name, EXPECTED_PAPER[name])
    assert param_counts(cfg, "full")[3] == 85337856     # "85M"


# ---------------------------------------------------------------- random init

def _init_random(model, gen, std_tok=0.5, which="all"):
    """Non-trivial parameters: weights N(0, 1/sqrt(fan_in)), biases N(0, 0.1),
    LayerNorm / BatchNorm weight 1 + N(0, 0.1), tokens, positions, prompts and
    prefixes N(0, std_tok), MoA slots N(0, 1/sqrt(C)); with hooks, BatchNorm
    running_mean N(0, 0.1) and running_var exp(N(0, 0.3)).
    which: "all" | "backbone" (hook tensors keep their documented init, e.g. the
    benchmark) | "hooks" (only hook tensors: non-neutral method tensors on a loaded
    backbone, for fixtures). Backbone tensors draw from gen in named_parameters
    order, exactly as before hooks existed (ast_tiny.h5 is unchanged)."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            hook = is_hook_name(n)
            if (which == "backbone" and hook) or (which == "hooks" and not hook):
                continue
            r = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if (n.endswith("_token") or n.endswith("position_embeddings")
                    or n.startswith("prompt.") or ".prefix." in n):
                v = std_tok * r
            elif n.endswith(".slots"):          # (C, N, S): logits ln . Phi of order 1
                v = r / math.sqrt(p.shape[0])
            elif n.endswith(".bias"):
                v = 0.1 * r
            elif p.dim() == 1:                  # LayerNorm / BatchNorm weight
                v = 1.0 + 0.1 * r
            else:                               # Linear (out, in) / Conv (out, in/groups, k...)
                v = r / math.sqrt(p[0].numel())
            p.copy_(v.to(p.dtype))
        if which == "backbone":
            return
        for n, b in model.named_buffers():
            r = torch.randn(b.shape, generator=gen, dtype=torch.float32)
            if n.endswith("running_mean"):
                b.copy_((0.1 * r).to(b.dtype))
            elif n.endswith("running_var"):
                b.copy_(torch.exp(0.3 * r).to(b.dtype))


# ---------------------------------------------------------------- self-checks

MICRO = ASTConfig(C=8, L=2, NH=2, MLP=16, F=20, frames=22, fstride=4, tstride=6, K=3)

# Every method (and combinations) at the micro size, for gradcheck.
MICRO_METHODS = {
    "lora_qv_rank": {"lora": {"targets": "qv", "rank": 2, "alpha": 4}},
    "lora_qkvo_rr_paper": {"lora": {"targets": "qkvo", "rr": 4, "init": "paper"}},
    "adapter_pfeiffer": {"adapter": {"type": "pfeiffer", "dim": 3}},
    "adapter_houlsby_res": {"adapter": {"type": "houlsby", "dim": 3, "residual": True}},
    "adapter_par_after_res": {"adapter": {"location": "mhsa", "conf": "parallel",
                                          "position": "after", "residual": True, "dim": 3}},
    "adapter_seq_before": {"adapter": {"location": "mhsa", "conf": "sequential",
                                       "position": "before", "dim": 3}},
    "adapter_seq_after_res": {"adapter": {"location": "ffn", "conf": "sequential",
                                          "position": "after", "residual": True, "dim": 3}},
    "conformer_houlsby": {"adapter": {"block": "conformer", "type": "houlsby", "dim": 3,
                                      "kernel": 3}},
    "conformer_seq_after": {"adapter": {"block": "conformer", "location": "ffn", "rr": 4,
                                        "conf": "sequential", "position": "after",
                                        "residual": True, "kernel": 5}},
    "prompt_shallow_cls": {"prompt": {"tokens": 2}, "pool": "cls"},
    "prompt_deep_prompts": {"prompt": {"tokens": 2, "deep": True}, "pool": "prompts"},
    "prompt_deep_speech": {"prompt": {"tokens": 1, "deep": True}, "pool": "speech"},
    "prompt_deep_ps": {"prompt": {"tokens": 3, "deep": True}, "pool": "prompts+speech"},
    "prefix": {"prefix": {"tokens": 4}},
    "dense_moa_mhsa": {"moa": {"kind": "dense", "experts": 3, "dim": 2, "location": "mhsa"}},
    "soft_moa_ffn": {"moa": {"kind": "soft", "experts": 2, "slots": 2, "dim": 2}},
    "bitfit_lora": {"base": "bitfit", "lora": {"targets": "v", "rank": 1}},
    "bitfit_petal": {"base": "bitfit_petal"},
    "adapter_seq_add_res": {"adapter": {"location": "mhsa", "conf": "sequential",
                                        "position": "before", "seq_add": True,
                                        "residual": True, "dim": 3}},
    "conformer_even": {"adapter": {"block": "conformer", "type": "houlsby", "dim": 3,
                                   "kernel": 4}},
    "conformer_reference": {"adapter": {"block": "conformer", "location": "mhsa", "dim": 2,
                                        "kernel": 2, "norm": "discarded", "init": "reference",
                                        "conf": "sequential", "position": "after"}},
    "everything": {"lora": {"targets": "qk", "rank": 2}, "prefix": {"tokens": 2},
                   "prompt": {"tokens": 2, "deep": True},
                   "adapter": {"block": "conformer", "location": "ffn", "dim": 2, "kernel": 3},
                   "moa": {"kind": "soft", "experts": 2, "slots": 1, "dim": 2,
                           "location": "mhsa"}},
}


def _micro_model(method, gen, which="all"):
    m = ASTModel(MICRO, method)
    _init_random(m, gen, which=which)
    return m.double()


def _gradcheck(model, x, y, names):
    from torch.nn.utils.stateless import functional_call
    params = dict(model.named_parameters())

    def f(xin, *ps):
        return loss_fn(functional_call(model, dict(zip(names, ps)), (xin,)), y)

    ins = [x.clone().requires_grad_()] + [params[n].detach().clone().requires_grad_()
                                          for n in names]
    return torch.autograd.gradcheck(f, ins, eps=1e-6, atol=1e-7, rtol=1e-5)


def _ln(u, w, b, eps):
    mu = u.mean(-1, keepdim=True)
    var = ((u - mu) ** 2).mean(-1, keepdim=True)
    return (u - mu) / torch.sqrt(var + eps) * w + b


def _check_backbone(gen):
    cfg = MICRO
    assert (cfg.f_dim, cfg.t_dim) == (2, 2)
    model = _micro_model(None, gen)
    x = torch.randn(2, cfg.frames, cfg.F, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 2])
    names = [n for n, _ in model.named_parameters()]

    # 1. Gradients of every parameter and of the input, for each pooling mode.
    for pool in ("all", "cls", "cls_dist"):
        m = ASTModel(replace(cfg, pool=pool)).double()
        m.load_state_dict(model.state_dict())
        assert _gradcheck(m, x, y, names)
        print(f"gradcheck ok (backbone, pool={pool}, {len(names)} parameter tensors + input)")

    # 2. Patch order and conv geometry against an explicit unfold of the fbank.
    pe = model.embeddings.patch_embeddings
    img = x.transpose(1, 2)                     # (B, F, frames)
    want = torch.empty(2, cfg.NP, cfg.C, dtype=torch.float64)
    W = pe.projection.weight.reshape(cfg.C, -1)
    for fi in range(cfg.f_dim):
        for ti in range(cfg.t_dim):
            blk = img[:, fi * cfg.fstride:fi * cfg.fstride + 16, ti * cfg.tstride:ti * cfg.tstride + 16]
            want[:, fi * cfg.t_dim + ti] = blk.reshape(2, -1) @ W.T + pe.projection.bias
    assert torch.allclose(pe(x), want, atol=1e-12)
    print("patch embedding: f-major order and (fstride, tstride) geometry ok")

    # 3. Encoder layer against PyTorch's own pre-LN TransformerEncoderLayer
    #    (an independent attention implementation; same head split).
    lay = model.encoder.layer[0]
    ref = nn.TransformerEncoderLayer(cfg.C, cfg.NH, cfg.MLP, dropout=0.0, activation="gelu",
                                     layer_norm_eps=cfg.ln_eps, batch_first=True,
                                     norm_first=True).double().eval()
    sa = lay.attention.attention
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
        ref.self_attn.out_proj.weight.copy_(lay.attention.output.dense.weight)
        ref.self_attn.out_proj.bias.copy_(lay.attention.output.dense.bias)
        ref.linear1.weight.copy_(lay.intermediate.dense.weight)
        ref.linear1.bias.copy_(lay.intermediate.dense.bias)
        ref.linear2.weight.copy_(lay.output.dense.weight)
        ref.linear2.bias.copy_(lay.output.dense.bias)
        ref.norm1.load_state_dict(lay.layernorm_before.state_dict())
        ref.norm2.load_state_dict(lay.layernorm_after.state_dict())
    h = torch.randn(2, cfg.T, cfg.C, generator=gen, dtype=torch.float64)
    assert torch.allclose(lay(h), ref(h), atol=1e-12)
    print("encoder layer == nn.TransformerEncoderLayer(norm_first, gelu) ok")

    # 4. Pooling: cls_dist is HF's pooler_output (mean of tokens 0 and 1 after LN).
    s = model.features(x)
    assert torch.equal(pool_tokens(s, "cls_dist"), (s[:, 0] + s[:, 1]) / 2)
    assert torch.allclose(pool_tokens(s, "all"), s.sum(1) / cfg.T, atol=1e-15)
    print("pooling ok")

    # 5. Trainable sets of the bases.
    full = set(trainable_names(model, "full"))
    lin = set(trainable_names(model, "linear"))
    bit = set(trainable_names(model, "bitfit"))
    bitp = set(trainable_names(model, "bitfit_petal"))
    assert full == set(names)
    assert lin == {"layernorm.weight", "layernorm.bias", "classifier.dense.weight",
                   "classifier.dense.bias"}
    assert bitp == {n for n in names if n.endswith(".bias")} | lin
    assert bit == bitp - {"embeddings.patch_embeddings.projection.bias", "layernorm.weight"}
    assert sum(n.endswith(".bias") for n in bit) == 8 * MICRO.L + 2  # q k v o fc1 fc2 ln1 ln2, lnf, head
    print(f"trainable sets ok: full {len(full)}, linear {len(lin)}, bitfit {len(bit)} tensors")


def _check_names_shapes():
    """Hook tensors exactly as METHODS.md names and shapes them (micro C=8, L=2)."""
    C, L = MICRO.C, MICRO.L

    def per_layer(rows):
        return {f"encoder.layer.{i}.{n}": s for i in range(L) for n, s in rows.items()}

    def bottleneck(prefix, D):
        return {f"{prefix}.down.weight": (D, C), f"{prefix}.down.bias": (D,),
                f"{prefix}.up.weight": (C, D), f"{prefix}.up.bias": (C,)}

    def conformer(prefix, D, k):
        return {f"{prefix}.norm.weight": (C,), f"{prefix}.norm.bias": (C,),
                f"{prefix}.pw1.weight": (2 * D, C), f"{prefix}.pw1.bias": (2 * D,),
                f"{prefix}.dw.weight": (D, 1, k), f"{prefix}.dw.bias": (D,),
                f"{prefix}.bn.weight": (D,), f"{prefix}.bn.bias": (D,),
                f"{prefix}.pw2.weight": (C, D), f"{prefix}.pw2.bias": (C,)}

    lora_o = {f"attention.attention.{p}.lora_{ab}.weight": s
              for p in ("query", "key", "value") for ab, s in (("A", (2, C)), ("B", (C, 2)))}
    lora_o.update({"attention.output.dense.lora_A.weight": (2, C),
                   "attention.output.dense.lora_B.weight": (C, 2)})
    moa_soft = {**{k: v for e in range(2) for k, v in bottleneck(f"moa_ffn.experts.{e}", 2).items()},
                "moa_ffn.slots": (C, 2, 2)}
    moa_dense = {**{k: v for e in range(3) for k, v in bottleneck(f"moa_mhsa.experts.{e}", 2).items()},
                 "moa_mhsa.router.weight": (3, C), "moa_mhsa.router.bias": (3,)}
    want = {
        "lora_qkvo_rr_paper": per_layer(lora_o),
        "adapter_houlsby_res": per_layer({**bottleneck("adapter_mhsa", 3),
                                          **bottleneck("adapter_ffn", 3)}),
        "conformer_houlsby": per_layer({**conformer("adapter_mhsa", 3, 3),
                                        **conformer("adapter_ffn", 3, 3)}),
        "prompt_deep_ps": {"prompt.embeddings": (1, 3, C), "prompt.deep_embeddings": (L - 1, 3, C)},
        "prompt_shallow_cls": {"prompt.embeddings": (1, 2, C)},
        "prefix": per_layer({"prefix.key": (1, 2, C), "prefix.value": (1, 2, C)}),
        "soft_moa_ffn": per_layer(moa_soft),
        "dense_moa_mhsa": per_layer(moa_dense),
    }
    for case, rows in want.items():
        m = ASTModel(MICRO, MICRO_METHODS[case])
        got = {n: tuple(p.shape) for n, p in m.named_parameters() if is_hook_name(n)}
        assert got == rows, (case, set(got) ^ set(rows))
    m = ASTModel(MICRO, MICRO_METHODS["conformer_houlsby"])
    bufs = {n: tuple(b.shape) for n, b in m.named_buffers()}
    assert bufs == per_layer({f"adapter_{loc}.bn.running_{s}": (3,)
                              for loc in ("mhsa", "ffn") for s in ("mean", "var")})
    print("hook tensor names and shapes as METHODS.md ok")


def _check_trainable_sets():
    heads = {"layernorm.weight", "layernorm.bias", "classifier.dense.weight", "classifier.dense.bias"}

    def lns(which):
        return {f"encoder.layer.{i}.layernorm_{w}.{p}" for i in range(MICRO.L)
                for w in which for p in ("weight", "bias")}

    for case, method in MICRO_METHODS.items():
        m = ASTModel(MICRO, method)
        got = set(trainable_names(m))
        hooks = {n for n, _ in m.named_parameters() if is_hook_name(n)}
        locs = hook_locations(method)
        want = heads | hooks | lns([w for w, loc in (("before", "mhsa"), ("after", "ffn"))
                                    if loc in locs])
        if m.method["base"].startswith("bitfit"):
            want |= set(trainable_names(m, m.method["base"])) | heads
        want -= {n for n in want if is_inert_name(m.method, n)}
        assert got == want, (case, got ^ want)
        assert not any("running" in n for n in got)
    # Spot checks written out.
    got = set(trainable_names(ASTModel(MICRO, MICRO_METHODS["lora_qv_rank"])))
    assert got == heads | {f"encoder.layer.{i}.attention.attention.{p}.lora_{ab}.weight"
                           for i in range(2) for p in ("query", "value") for ab in "AB"}
    got = set(trainable_names(ASTModel(MICRO, {"adapter": {"type": "pfeiffer", "dim": 2}})))
    assert lns(["after"]) <= got and not (lns(["before"]) & got)
    got = set(trainable_names(ASTModel(MICRO, {"prompt": {"tokens": 2}})))
    assert got == heads | {"prompt.embeddings"}
    got = set(trainable_names(ASTModel(MICRO, {"base": "full", "prefix": {"tokens": 2}})))
    assert got == {n for n, _ in ASTModel(MICRO, {"prefix": {"tokens": 2}}).named_parameters()}
    print(f"trainable sets ok for {len(MICRO_METHODS)} method configs")


def _check_gradients(gen):
    x = torch.randn(2, MICRO.frames, MICRO.F, generator=gen, dtype=torch.float64)
    y = torch.tensor([1, 2])
    for case, method in MICRO_METHODS.items():
        m = _micro_model(method, gen)
        names = trainable_names(m)
        modes = ("train", "eval") if "conformer" in case or case == "everything" else ("train",)
        for mode in modes:
            m.train(mode == "train")
            assert _gradcheck(m, x, y, names), case
        print(f"gradcheck ok ({case}, {'+'.join(modes)}, {len(names)} trainable tensors + input)")


def _check_neutral(gen):
    """Documented inits leave the backbone's logits bit-for-bit unchanged where the
    placement is neutral, and change them where it is not."""
    x = torch.randn(3, MICRO.frames, MICRO.F, generator=gen, dtype=torch.float64)
    plain = _micro_model(None, gen)
    neutral = {
        "lora reference": {"lora": {"targets": "qkvo", "rank": 2}},
        "lora paper": {"lora": {"targets": "qv", "rr": 4, "init": "paper"}},
        "bottleneck parallel before": {"adapter": {"type": "houlsby", "dim": 3}},
        "bottleneck parallel after": {"adapter": {"type": "houlsby", "dim": 3, "position": "after"}},
        "bottleneck sequential before +res": {"adapter": {"type": "houlsby", "dim": 3,
                                                          "conf": "sequential", "residual": True}},
        "bottleneck sequential after +res": {"adapter": {"type": "houlsby", "dim": 3,
                                                         "conf": "sequential", "position": "after",
                                                         "residual": True}},
        "bottleneck reference init": {"adapter": {"type": "pfeiffer", "dim": 3, "init": "reference"}},
        "conformer parallel before": {"adapter": {"block": "conformer", "type": "houlsby",
                                                  "dim": 3, "kernel": 3}},
        "dense moa": {"moa": {"kind": "dense", "experts": 3, "dim": 2, "location": "mhsa"}},
        "soft moa": {"moa": {"kind": "soft", "experts": 2, "slots": 2, "dim": 2}},
        "lora + adapter + moa": {"lora": {"targets": "qv", "rank": 2},
                                 "adapter": {"type": "pfeiffer", "dim": 2},
                                 "moa": {"kind": "soft", "experts": 2, "dim": 2, "location": "mhsa"}},
    }
    not_neutral = {
        "bottleneck sequential before": {"adapter": {"type": "pfeiffer", "dim": 3, "conf": "sequential"}},
        "bottleneck sequential after": {"adapter": {"type": "pfeiffer", "dim": 3, "conf": "sequential",
                                                    "position": "after"}},
        "bottleneck parallel +res": {"adapter": {"type": "pfeiffer", "dim": 3, "residual": True}},
        "conformer reference init": {"adapter": {"block": "conformer", "type": "pfeiffer",
                                                 "dim": 3, "kernel": 3, "init": "reference"}},
    }
    for mode in (True, False):
        plain.train(mode)
        want = plain(x)
        for case, method in {**neutral, **not_neutral}.items():
            m = ASTModel(MICRO, method).double()
            load_backbone(m, plain.state_dict())
            m.train(mode)
            same = torch.equal(m(x), want)
            assert same == (case in neutral), case
    print(f"neutral inits reproduce the backbone exactly ({len(neutral)} configs, train + eval); "
          f"{len(not_neutral)} non-neutral placements differ as documented")


def _check_explicit(gen):
    """Each hook against a direct transcription of METHODS.md's formulas."""
    C, T = MICRO.C, MICRO.T
    u = torch.randn(3, T, C, generator=gen, dtype=torch.float64)

    # LoRA: forward == merged weight W + s B A; scale alpha/rr vs alpha/rank.
    m = _micro_model({"lora": {"targets": "qkvo", "rr": 4, "alpha": 6}}, gen)
    q = m.encoder.layer[1].attention.attention.query
    assert q.lora_scale == 6 / 4 and q.lora_A.weight.shape == (round(C / 4), C)
    assert torch.allclose(q(u), u @ q.merged_weight().T + q.bias, atol=1e-13)
    assert ASTModel(MICRO, {"lora": {"rank": 2, "alpha": 6}}).encoder.layer[0] \
        .attention.attention.value.lora_scale == 3.0
    xin = torch.randn(2, MICRO.frames, MICRO.F, generator=gen, dtype=torch.float64)
    merged = ASTModel(MICRO).double()
    sd = {n: t for n, t in m.state_dict().items() if not is_hook_name(n)}
    for n, mod in m.named_modules():
        if isinstance(mod, Projection):
            sd[n + ".weight"] = mod.merged_weight().detach()
    merged.load_state_dict(sd)
    assert torch.allclose(m(xin), merged(xin), atol=1e-12)
    print("LoRA == merged W + s B A ok")

    # Adapter placements: the table of METHODS.md.
    for conf in ("parallel", "sequential"):
        for pos in ("before", "after"):
            for res in (False, True):
                m = _micro_model({"adapter": {"type": "houlsby", "dim": 3, "conf": conf,
                                              "position": pos, "residual": res}}, gen)
                lay = m.encoder.layer[0]
                r = 1.0 if res else 0.0
                table = {
                    ("parallel", "before"): lambda S, A, ln: S(ln) + A(ln) + r * ln,
                    ("parallel", "after"): lambda S, A, ln: S(ln) + A(S(ln)) + r * S(ln),
                    ("sequential", "before"): lambda S, A, ln: S(A(ln) + r * ln),
                    ("sequential", "after"): lambda S, A, ln: A(S(ln)) + r * S(ln),
                }[(conf, pos)]
                h = u + table(lay.attention, lay.adapter_mhsa, lay.layernorm_before(u))
                out = h + table(lambda z: lay.output(lay.intermediate(z)), lay.adapter_ffn,
                                lay.layernorm_after(h))
                assert torch.allclose(lay(u), out, atol=1e-13), (conf, pos, res)
    print("adapter placements (conf x position x residual) == METHODS.md table ok")

    # Conformer block, train and eval, and the running-statistics update.
    k, D = 5, 3
    m = _micro_model({"adapter": {"block": "conformer", "location": "ffn", "dim": D, "kernel": k}}, gen)
    A = m.encoder.layer[0].adapter_ffn
    rm0, rv0 = A.bn.running_mean.clone(), A.bn.running_var.clone()
    n = _ln(u, A.norm.weight, A.norm.bias, 1e-5)
    p = n @ A.pw1.weight.T + A.pw1.bias
    g = p[..., :D] * torch.sigmoid(p[..., D:])
    c = torch.zeros(3, T, D, dtype=torch.float64) + A.dw.bias
    for t in range(T):
        for j in range(k):
            if 0 <= t + j - (k - 1) // 2 < T:
                c[:, t] += A.dw.weight[:, 0, j] * g[:, t + j - (k - 1) // 2]
    mu, var = c.mean((0, 1)), c.var((0, 1), unbiased=False)
    nb = 3 * T

    def tail_of(A):
        def tail(cn):
            z = cn * A.bn.weight + A.bn.bias
            return (z * torch.sigmoid(z)) @ A.pw2.weight.T + A.pw2.bias
        return tail
    tail = tail_of(A)

    A.train()
    assert torch.allclose(A(u), tail((c - mu) / torch.sqrt(var + 1e-5)), atol=1e-12)
    assert torch.allclose(A.bn.running_mean, 0.9 * rm0 + 0.1 * mu, atol=1e-14)
    assert torch.allclose(A.bn.running_var, 0.9 * rv0 + 0.1 * var * nb / (nb - 1), atol=1e-14)
    A.eval()
    rm, rv = A.bn.running_mean, A.bn.running_var
    assert torch.allclose(A(u), tail((c - rm) / torch.sqrt(rv + 1e-5)), atol=1e-12)
    assert torch.equal(rm, A.bn.running_mean)   # eval leaves them alone

    # Even kernels: padding="same" puts (k-1)//2 zeros left and k//2 right; the
    # discarded LayerNorm leaves pw1 reading u itself.
    for k in (2, 4, 6):
        m = _micro_model({"adapter": {"block": "conformer", "location": "ffn", "dim": D,
                                      "kernel": k, "norm": "discarded"}}, gen)
        A = m.encoder.layer[0].adapter_ffn
        A.eval()
        p = u @ A.pw1.weight.T + A.pw1.bias
        g = p[..., :D] * torch.sigmoid(p[..., D:])
        c = torch.zeros(3, T, D, dtype=torch.float64) + A.dw.bias
        gp = torch.cat([torch.zeros(3, (k - 1) // 2, D, dtype=torch.float64), g,
                        torch.zeros(3, k // 2, D, dtype=torch.float64)], 1)
        for t in range(T):
            for j in range(k):
                c[:, t] += A.dw.weight[:, 0, j] * gp[:, t + j]
        rm, rv = A.bn.running_mean, A.bn.running_var
        assert torch.allclose(A(u), tail_of(A)((c - rm) / torch.sqrt(rv + 1e-5)), atol=1e-12), k
    print("conformer block (LN applied or discarded, GLU, depthwise 'same' conv with odd and "
          "even kernels, BatchNorm train/eval, SiLU) ok")

    # Dense and Soft MoA.
    m = _micro_model({"moa": {"kind": "dense", "experts": 3, "dim": 2}}, gen)
    M = m.encoder.layer[0].moa_ffn
    r = torch.softmax(u @ M.router.weight.T + M.router.bias, -1)
    want = sum(r[..., i:i + 1] * (Fn.gelu(u @ E.down.weight.T + E.down.bias) @ E.up.weight.T + E.up.bias)
               for i, E in enumerate(M.experts))
    assert torch.allclose(M(u), want, atol=1e-13)
    N, S = 2, 3
    m = _micro_model({"moa": {"kind": "soft", "experts": N, "slots": S, "dim": 2}}, gen)
    M = m.encoder.layer[1].moa_ffn
    want = torch.zeros_like(u)
    for b in range(3):
        lg = torch.tensor([[[float(u[b, t] @ M.slots[:, i, s]) for s in range(S)] for i in range(N)]
                           for t in range(T)], dtype=torch.float64)        # (T, N, S)
        Dp = torch.exp(lg) / torch.exp(lg).sum(0, keepdim=True)
        Cb = torch.exp(lg) / torch.exp(lg).sum((1, 2), keepdim=True)
        for i in range(N):
            for s in range(S):
                xs = sum(Dp[t, i, s] * u[b, t] for t in range(T))
                ys = M.experts[i](xs)
                for t in range(T):
                    want[b, t] += Cb[t, i, s] * ys
    assert torch.allclose(M(u), want, atol=1e-12)
    print("dense MoA and soft MoA (slots, dispatch over tokens, combine over experts x slots) ok")

    # Prefix: explicit per-head attention over [k_0, Kp, k_1..].
    m = _micro_model({"prefix": {"tokens": 4}}, gen)
    lay = m.encoder.layer[1]
    sa, pf = lay.attention.attention, lay.prefix
    HS = MICRO.HS
    Q, K_, V = sa.query(u), sa.key(u), sa.value(u)
    Kall = torch.cat([K_[:, :1], pf.key.expand(3, -1, -1), K_[:, 1:]], 1)
    Vall = torch.cat([V[:, :1], pf.value.expand(3, -1, -1), V[:, 1:]], 1)
    y = torch.zeros_like(u)
    for h in range(MICRO.NH):
        cs = slice(h * HS, (h + 1) * HS)
        a = torch.softmax(Q[..., cs] @ Kall[..., cs].transpose(1, 2) / math.sqrt(HS), -1)
        assert a.shape == (3, T, T + 2)
        y[..., cs] = a @ Vall[..., cs]
    assert torch.allclose(lay.attention_sublayer(u), lay.attention.output(y), atol=1e-13)
    print("prefix keys/values after CLS, queries unchanged ok")

    # Prompts: token layout, deep replacement before layers >= 1, pooling.
    P = 2
    m = _micro_model({"prompt": {"tokens": P, "deep": True}, "pool": "speech"}, gen)
    e, pr = m.embeddings, m.prompt
    tok = m.tokens(xin)
    pos = e.position_embeddings
    assert tok.shape == (2, token_count(MICRO, m.method), C) == (2, 1 + P + MICRO.NP, C)
    assert torch.equal(tok[:, 0], (e.cls_token + pos[:, 0:1]).expand(2, -1, -1)[:, 0])
    assert torch.equal(tok[:, 1:1 + P], pr.embeddings.expand(2, -1, -1))
    assert torch.equal(tok[:, 1 + P:], e.patch_embeddings(xin) + pos[:, 2:])
    seen = []
    hooks = [lay.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0]))
             for lay in m.encoder.layer]
    feats = m.features(xin)
    for hk in hooks:
        hk.remove()
    assert torch.equal(seen[0], tok)
    for i in range(1, MICRO.L):
        assert torch.equal(seen[i][:, 1:1 + P], pr.deep_embeddings[i - 1].expand(2, -1, -1))
    want = {"cls": feats[:, 0], "all": feats.mean(1), "prompts": feats[:, 1:1 + P].mean(1),
            "speech": feats[:, 1 + P:].mean(1), "prompts+speech": feats[:, 1:].mean(1)}
    for pool, v in want.items():
        assert torch.allclose(pool_tokens(feats, pool, P), v, atol=1e-15)
    assert torch.allclose(m(xin), m.classifier(want["speech"]), atol=1e-14)
    print("prompt tokens, deep replacement and the five pooling modes ok")

    # Inits: distributions / bounds as documented.
    cfg = replace(MICRO, C=64)
    mm = ASTModel(cfg, {"prompt": {"tokens": 50, "deep": True}, "prefix": {"tokens": 40},
                        "moa": {"kind": "soft", "experts": 4, "slots": 2, "rr": 8}})
    v = math.sqrt(6 / (3 * 256 + 64))
    for t in (mm.prompt.embeddings, mm.prompt.deep_embeddings, mm.encoder.layer[0].prefix.key):
        assert t.abs().max() <= v and t.abs().max() > 0.9 * v
    sl = mm.encoder.layer[0].moa_ffn.slots
    assert abs(sl.std().item() / math.sqrt(2 / (4 * 2 + 64 * 2)) - 1) < 0.1
    mm = ASTModel(cfg, {"lora": {"rank": 16}, "adapter": {"block": "conformer", "rr": 4}})
    q = mm.encoder.layer[0].attention.attention.query
    assert q.lora_A.weight.abs().max() == 0 and 0.9 / 4 < q.lora_B.weight.abs().max() <= 1 / 4
    A = mm.encoder.layer[0].adapter_ffn
    assert A.dw.weight.shape == (16, 1, 31) and A.dw.weight.abs().max() <= 1 / math.sqrt(31)
    assert A.pw2.weight.abs().max() == 0 and torch.equal(A.bn.running_var, torch.ones(16))
    mm = ASTModel(cfg, {"adapter": {"block": "conformer", "rr": 4, "init": "reference"}})
    A = mm.encoder.layer[0].adapter_ffn
    for t in (A.pw2.weight, A.pw2.bias):       # torch's Conv/Linear default: U(+-1/sqrt(D))
        assert 0.9 / 4 < t.abs().max() <= 1 / 4
    print("documented init distributions ok")


def _check_config_errors():
    bad = [
        {"prefix": {"tokens": 3}},
        {"lora": {"rank": 4, "rr": 16}},
        {"lora": {"targets": "qx"}},
        {"adapter": {"type": "pfeiffer", "location": "ffn"}},
        {"adapter": {"block": "conformer", "norm": "skipped"}},
        {"adapter": {"norm": "discarded"}},
        {"adapter": {"seq_add": True}},
        {"adapter": {"kernel": 5}},
        {"moa": {"kind": "dense", "slots": 2}},
        {"prompt": {"tokens": 2}, "pool": "cls_dist"},
        {"pool": "speech"},
        {"lora": {"rank": 2}, "lorra": {}},
        {"base": "bitfix"},
    ]
    for method in bad:
        try:
            normalize_method(method)
        except ValueError:
            continue
        raise AssertionError(f"accepted {method}")
    m = normalize_method({"lora": {"targets": "vq"}})
    assert m == {"base": "linear", "pool": "all",
                 "lora": {"targets": "qv", "rr": 64, "alpha": 8.0, "init": "reference"}}
    assert normalize_method(json.loads(json.dumps(m))) == m
    print(f"config validation ok ({len(bad)} invalid configs rejected)")


def _self_check():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    _check_backbone(gen)
    _check_config_errors()
    _check_names_shapes()
    _check_trainable_sets()
    _check_explicit(gen)
    _check_neutral(gen)
    _check_gradients(gen)


if __name__ == "__main__":
    if sys.argv[1:] == ["--counts"]:
        print_counts()
    elif sys.argv[1:]:
        sys.exit("usage: torch_ast.py [--counts]")
    else:
        _self_check()
