"""Writes OUTDIR/hf_tiny/: a tiny HuggingFace-style AST audio classifier and the
logits PyTorch computes for one WAV file, for the import / predict tests.

    /usr/bin/python3 tests/hf_ref.py tests/fixtures      (what `make fixtures` runs)

hf_tiny/config.json        HF ASTConfig fields (hidden_size 64, 2 layers, 4 heads,
                           MLP 256, 128 mel bins, max_length 64, patch 16, strides 10,
                           architectures ASTForAudioClassification, id2label of 5
                           names with escapes: quotes, \\u00e9, a surrogate pair)
hf_tiny/model.safetensors  ASTForAudioClassification names: every ASTModel tensor with
                           the `audio_spectrogram_transformer.` prefix, plus
                           classifier.layernorm.{weight,bias}, classifier.dense.{weight,bias};
                           F32, written by hand (no safetensors package here): 8-byte
                           little-endian header length, compact JSON header
                           (__metadata__ first, then names sorted), space-padded to a
                           multiple of 8, then the tensors' bytes in that order
hf_tiny/clip.wav           1 s, 16 kHz, 16-bit PCM mono: a chirp over noise
hf_tiny/expected.h5        per frames T in (64, 48, 100), group /T<T>:
    logits    (K,) float64  HF ASTForAudioClassification on the clip
    features  (T, 128) float32  the model input (diagnostics)
    attrs frames (int32); root attrs K (int32), labels (vlen strings, id2label order)

The reference: the waveform is the WAV's int16 / 32768 (what libsndfile and torchaudio
load), torchaudio.compliance.kaldi.fbank with HF's settings in float64, zero-padded or
cut to T frames, normalised (x + 4.2677393) / (2 * 4.5689974); then the model in
float64 from the exact float32 parameters: ASTModel (tests/torch_ast.py), pooled
output (CLS + distillation) / 2, LayerNorm(eps 1e-12), Linear. For T != 64 (the
checkpoint's max_length) the position embeddings are re-gridded as petal documents:
CLS and distillation rows kept, the patch rows as a (C, f_dim, t_dim) grid resized to
(f_dim, t_new) by F.interpolate(mode="bilinear", align_corners=False).
"""
import json
import os
import struct
import sys
import wave
from dataclasses import replace

import h5py
import numpy as np
import torch
import torch.nn.functional as Fn
import torchaudio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ast import ASTConfig, ASTModel, _init_random  # noqa: E402

PREFIX = "audio_spectrogram_transformer."
RATE = 16000
NORM_MEAN, NORM_STD = -4.2677393, 4.5689974
LABELS = ["Speech", 'Dog "woof"', "Caf\u00e9 ambience", "Bird \U0001F426 song", "Siren, alarm"]
FRAMES = (64, 48, 100)


def hf_config(cfg):
    return {
        "architectures": ["ASTForAudioClassification"],
        "attention_probs_dropout_prob": 0.0,
        "frequency_stride": cfg.fstride,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": cfg.C,
        "id2label": {str(i): n for i, n in enumerate(LABELS)},
        "initializer_range": 0.02,
        "intermediate_size": cfg.MLP,
        "label2id": {n: i for i, n in enumerate(LABELS)},
        "layer_norm_eps": cfg.ln_eps,
        "max_length": cfg.frames,
        "model_type": "audio-spectrogram-transformer",
        "num_attention_heads": cfg.NH,
        "num_hidden_layers": cfg.L,
        "num_mel_bins": cfg.F,
        "patch_size": cfg.patch,
        "qkv_bias": True,
        "time_stride": cfg.tstride,
        "torch_dtype": "float32",
    }


def write_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    blobs, off = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def clip():
    """1 s: a 150 Hz -> 5 kHz exponential chirp plus white noise, 16-bit."""
    rng = np.random.default_rng(1234)
    t = np.arange(RATE) / RATE
    f0, f1 = 150.0, 5000.0
    phase = 2 * np.pi * f0 * (np.power(f1 / f0, t) - 1) / np.log(f1 / f0)
    x = 0.4 * np.sin(phase) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + 0.05 * rng.standard_normal(RATE)
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def features(wave64, T, F):
    fb = torchaudio.compliance.kaldi.fbank(
        wave64.unsqueeze(0), htk_compat=True, sample_frequency=RATE, use_energy=False,
        window_type="hanning", num_mel_bins=F, dither=0.0, frame_shift=10)
    n = fb.shape[0]
    fb = torch.cat([fb, torch.zeros(T - n, F, dtype=fb.dtype)]) if n < T else fb[:T]
    return (fb - NORM_MEAN) / (NORM_STD * 2)


def regrid_pos(pos, cfg_old, t_new):
    """(1, 2 + f*t_old, C) -> (1, 2 + f*t_new, C), bilinear over the (f, t) grid."""
    C, f, t_old = cfg_old.C, cfg_old.f_dim, cfg_old.t_dim
    grid = pos[:, 2:].reshape(1, f, t_old, C).permute(0, 3, 1, 2)          # (1, C, f, t)
    grid = Fn.interpolate(grid, size=(f, t_new), mode="bilinear", align_corners=False)
    return torch.cat([pos[:, :2], grid.permute(0, 2, 3, 1).reshape(1, f * t_new, C)], dim=1)


def classifier_logits(cfg, state64, head_ln, x):
    """ASTForAudioClassification in float64 on x (1, T, F)."""
    model = ASTModel(cfg).double()
    model.load_state_dict(state64)
    with torch.no_grad():
        h = model.features(x)
        pooled = (h[:, 0] + h[:, 1]) / 2
        z = Fn.layer_norm(pooled, (cfg.C,), head_ln[0], head_ln[1], cfg.ln_eps)
        return model.classifier(z)[0]


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: hf_ref.py OUTDIR\n")
        return 2
    out = os.path.join(sys.argv[1], "hf_tiny")
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    cfg = ASTConfig(C=64, L=2, NH=4, MLP=256, F=128, frames=64, fstride=10, tstride=10,
                    K=len(LABELS), pool="cls_dist")
    gen = torch.Generator().manual_seed(20240605)
    model = ASTModel(cfg)
    _init_random(model, gen)
    state32 = {n: p.detach().clone() for n, p in model.state_dict().items()}
    hln32 = (1.0 + 0.1 * torch.randn(cfg.C, generator=gen),
             0.1 * torch.randn(cfg.C, generator=gen))

    tensors = {}
    for n, t in state32.items():
        tensors[n if n.startswith("classifier.") else PREFIX + n] = t.numpy()
    tensors["classifier.layernorm.weight"] = hln32[0].numpy()
    tensors["classifier.layernorm.bias"] = hln32[1].numpy()
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(hf_config(cfg), f, indent=2, sort_keys=True)
        f.write("\n")

    pcm = clip()
    with wave.open(os.path.join(out, "clip.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    wave64 = torch.from_numpy(pcm.astype(np.float64) / 32768.0)

    hln64 = tuple(t.double() for t in hln32)
    path = os.path.join(out, "expected.h5")
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as h:
        h.attrs["K"] = np.int32(cfg.K)
        h.attrs.create("labels", LABELS, dtype=h5py.string_dtype("utf-8"))
        for T in FRAMES:
            cfg_t = replace(cfg, frames=T)
            state64 = {n: t.double() for n, t in state32.items()}
            if T != cfg.frames:
                state64["embeddings.position_embeddings"] = regrid_pos(
                    state64["embeddings.position_embeddings"], cfg, cfg_t.t_dim)
            x = features(wave64, T, cfg.F)
            z = classifier_logits(cfg_t, state64, hln64, x.unsqueeze(0))
            g = h.create_group(f"T{T}")
            g.attrs["frames"] = np.int32(T)
            g.create_dataset("logits", data=z.numpy())
            g.create_dataset("features", data=x.numpy().astype(np.float32))
            print(f"T={T:3d} t_dim={cfg_t.t_dim} logits={np.array2string(z.numpy(), precision=5)}")
    os.replace(tmp, path)
    for n in sorted(os.listdir(out)):
        print(f"wrote {os.path.join(out, n)} ({os.path.getsize(os.path.join(out, n))} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
