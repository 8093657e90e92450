"""PyTorch reference of the Audio Spectrogram Transformer (AST) that petal's C core
must reproduce. Written to match HuggingFace ASTModel numerically, with the same
parameter names minus the `audio_spectrogram_transformer.` prefix, plus a
`classifier.dense` head. Used by tests/torch_ref.py (fixtures) and
bench/torch_bench.py (speed baseline). Run this file directly for self-checks.

Shapes use the project's letters: B batch, T tokens (= NP + 2), C channels,
NH heads, HS head size (= C / NH), F mel bins, L layers, K classes.

Extension points for later PETL methods (none built yet):
  - every projection is its own nn.Linear attribute (query/key/value/output.dense/
    intermediate.dense/output.dense), so LoRA can wrap or replace one by name;
  - ASTLayer.forward keeps the attention and MLP sub-layers as separate calls
    (`attention_sublayer`, `mlp_sublayer`) with the LayerNorm output in hand, so
    parallel / sequential adapters can be inserted beside or after either;
  - ASTModel.tokens() builds the token sequence and ASTEncoder.forward walks the
    layers one by one, so prompt tokens (shallow or deep) and prefix key/values
    have a single place to go;
  - the trainable set is a rule over parameter names (METHODS / trainable_names),
    so a new method adds one predicate, not a model subclass.
"""

import math
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
    pool: str = "all"   # all | cls | cls_dist
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

    def forward(self, fbank):
        p = self.patch_embeddings(fbank)       # (B, NP, C)
        B = p.shape[0]
        x = torch.cat([self.cls_token.expand(B, -1, -1),
                       self.distillation_token.expand(B, -1, -1), p], dim=1)
        return x + self.position_embeddings    # (B, T, C)


# ---------------------------------------------------------------- encoder

class ASTSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.NH, self.HS = cfg.NH, cfg.HS
        self.query = nn.Linear(cfg.C, cfg.C)
        self.key = nn.Linear(cfg.C, cfg.C)
        self.value = nn.Linear(cfg.C, cfg.C)

    def heads(self, x):
        # (B, T, C) -> (B, NH, T, HS); head h owns channels h*HS:(h+1)*HS.
        B, T, _ = x.shape
        return x.view(B, T, self.NH, self.HS).transpose(1, 2)

    def forward(self, x):
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        att = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.HS)  # (B, NH, T, T)
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v)               # (B, NH, T, HS)
        B, _, T, _ = y.shape
        return y.transpose(1, 2).reshape(B, T, self.NH * self.HS)


class ASTSelfOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.C, cfg.C)

    def forward(self, x):
        return self.dense(x)


class ASTAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = ASTSelfAttention(cfg)
        self.output = ASTSelfOutput(cfg)

    def forward(self, x):
        return self.output(self.attention(x))


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
    """Pre-LN block: h = x + O(attn(LN1 x)); out = h + fc2(gelu(fc1(LN2 h)))."""

    def __init__(self, cfg):
        super().__init__()
        self.attention = ASTAttention(cfg)
        self.intermediate = ASTIntermediate(cfg)
        self.output = ASTOutput(cfg)
        self.layernorm_before = nn.LayerNorm(cfg.C, eps=cfg.ln_eps)
        self.layernorm_after = nn.LayerNorm(cfg.C, eps=cfg.ln_eps)

    def attention_sublayer(self, ln1):
        return self.attention(ln1)

    def mlp_sublayer(self, ln2):
        return self.output(self.intermediate(ln2))

    def forward(self, x):
        h = x + self.attention_sublayer(self.layernorm_before(x))
        return h + self.mlp_sublayer(self.layernorm_after(h))


class ASTEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList([ASTLayer(cfg) for _ in range(cfg.L)])

    def forward(self, x):
        for layer in self.layer:
            x = layer(x)
        return x


# ---------------------------------------------------------------- model

class ASTHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.C, cfg.K)

    def forward(self, x):
        return self.dense(x)


def pool_tokens(x, pool):
    """(B, T, C) after the final LayerNorm -> (B, C)."""
    if pool == "all":
        return x.mean(dim=1)
    if pool == "cls":
        return x[:, 0]
    if pool == "cls_dist":                     # HF ASTModel.pooler_output
        return (x[:, 0] + x[:, 1]) / 2
    raise ValueError(f"unknown pool mode {pool!r}")


class ASTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert cfg.C % cfg.NH == 0, "C must be a multiple of NH"
        self.cfg = cfg
        self.embeddings = ASTEmbeddings(cfg)
        self.encoder = ASTEncoder(cfg)
        self.layernorm = nn.LayerNorm(cfg.C, eps=cfg.ln_eps)
        self.classifier = ASTHead(cfg)

    def tokens(self, fbank):
        return self.embeddings(fbank)           # (B, T, C)

    def features(self, fbank):
        """Final-LayerNorm token states (B, T, C), i.e. HF last_hidden_state."""
        return self.layernorm(self.encoder(self.tokens(fbank)))

    def forward(self, fbank):
        """fbank (B, frames, F) -> logits (B, K)."""
        return self.classifier(pool_tokens(self.features(fbank), self.cfg.pool))


def loss_fn(logits, labels):
    return Fn.cross_entropy(logits, labels)    # mean over the batch


# ---------------------------------------------------------------- methods

def _is_head_or_final_ln(name):
    return name.startswith("classifier.") or name.startswith("layernorm.")


# method -> predicate over parameter names (names as in ASTModel.named_parameters).
METHODS = {
    "full": lambda name: True,
    "linear": _is_head_or_final_ln,
    "bitfit": lambda name: name.endswith(".bias") or _is_head_or_final_ln(name),
}


def trainable_names(model, method):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    rule = METHODS[method]
    return [n for n, _ in model.named_parameters() if rule(n)]


def set_trainable(model, method):
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


# ---------------------------------------------------------------- self-checks

def _init_random(model, gen, std_tok=0.5):
    """Non-trivial parameters: weights N(0, 1/sqrt(fan_in)), biases N(0, 0.1),
    LayerNorm weight 1 + N(0, 0.1), tokens and positions N(0, std_tok)."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            r = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if n.endswith("_token") or n.endswith("position_embeddings"):
                v = std_tok * r
            elif n.endswith(".bias"):
                v = 0.1 * r
            elif p.dim() == 1:                  # LayerNorm weight
                v = 1.0 + 0.1 * r
            else:                               # Linear (out, in) / Conv2d (out, 1, 16, 16)
                v = r / math.sqrt(p[0].numel())
            p.copy_(v.to(p.dtype))


def _self_check():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    # Micro config: 2x2 patches, T = 6, two heads.
    cfg = ASTConfig(C=8, L=2, NH=2, MLP=16, F=20, frames=22, fstride=4, tstride=6, K=3)
    assert (cfg.f_dim, cfg.t_dim) == (2, 2)
    model = ASTModel(cfg)
    _init_random(model, gen)
    model.double()
    x = torch.randn(2, cfg.frames, cfg.F, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 2])
    names = [n for n, _ in model.named_parameters()]

    # 1. Gradients of every parameter and of the input, for each pooling mode.
    from torch.nn.utils.stateless import functional_call
    for pool in ("all", "cls", "cls_dist"):
        m = ASTModel(replace(cfg, pool=pool)).double()
        m.load_state_dict(model.state_dict())

        def f(xin, *ps):
            return loss_fn(functional_call(m, dict(zip(names, ps)), (xin,)), y)

        ins = [x.clone().requires_grad_()] + [p.detach().clone().requires_grad_()
                                              for p in m.parameters()]
        assert torch.autograd.gradcheck(f, ins, eps=1e-6, atol=1e-7, rtol=1e-5)
        print(f"gradcheck ok (pool={pool}, {len(ins) - 1} parameter tensors + input)")

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

    # 5. Trainable sets.
    full = set(trainable_names(model, "full"))
    lin = set(trainable_names(model, "linear"))
    bit = set(trainable_names(model, "bitfit"))
    assert full == set(names)
    assert lin == {"layernorm.weight", "layernorm.bias", "classifier.dense.weight",
                   "classifier.dense.bias"}
    assert bit == {n for n in names if n.endswith(".bias")} | lin
    assert "embeddings.patch_embeddings.projection.bias" in bit
    print(f"trainable sets ok: full {len(full)}, linear {len(lin)}, bitfit {len(bit)} tensors")


if __name__ == "__main__":
    _self_check()
