#!/usr/bin/python3
"""Writes OUTDIR/fbank.h5: fixture clips and torchaudio's front-end output for them.

Run with Debian's Python (torch, torchaudio, h5py):  /usr/bin/python3 tests/torchaudio_ref.py tests/fixtures

Layout (all float32):
  /  attrs: max_length, mel_bins, norm_mean, norm_std, torch/torchaudio versions
  /clips/<name>/wave       (n,)          waveform at attrs rate (as stored, float32)
               /fbank      (frames, F)   torchaudio.compliance.kaldi.fbank, AST settings (raw log-mel)
               /features   (max_length, F)  fbank padded with zeros / cut, then (x - mean) / (2 std)
               /fbank_f32  (frames, F)   16 kHz clips only: the same fbank from torchaudio's float32 path
               /wave16k    (m,)          resampled clips only: torchaudio.functional.resample output
               /fbank64    (frames, 64)  clip "odd" only: num_mel_bins=64 (the bin count is configurable)
     attrs: rate, kind ("16k" | "resampled"), nframes, f32_vs_f64 (max |torchaudio float32 - float64| fbank)

The reference is computed in float64: the float32 waveform is widened exactly, then
resampling and fbank run in float64 (torchaudio computes its mel bank in float32 and casts
it, and keeps the float32-epsilon log floor in float64 too, so only rounding differs). The
C code works in float32; f32_vs_f64 records how far torchaudio's own float32 path is from
the float64 one, for scale.

Clips shorter than one 25 ms window: torchaudio 0.13 raises an AssertionError in
kaldi.fbank; the AST front end defines them as 0 frames, all padding, and that is what the
fixture stores (fbank of shape (0, F)).
"""
import math
import os
import sys

import h5py
import numpy as np
import torch
import torchaudio

MAX_LENGTH = 100
MEL_BINS = 128
NORM_MEAN = -4.2677393
NORM_STD = 4.5689974


def kaldi_fbank(wave, bins=MEL_BINS, rate=16000):
    """AST front end's fbank of a 1-D float tensor at 16 kHz; (0, bins) if shorter than a window."""
    if wave.numel() < int(rate * 0.025):
        return torch.zeros(0, bins, dtype=wave.dtype)
    return torchaudio.compliance.kaldi.fbank(
        wave.unsqueeze(0), htk_compat=True, sample_frequency=rate, use_energy=False,
        window_type="hanning", num_mel_bins=bins, dither=0.0, frame_shift=10)


def pad_normalise(fb):
    """HF ASTFeatureExtractor: zero-pad or cut to MAX_LENGTH frames, then normalise."""
    n = fb.shape[0]
    if n < MAX_LENGTH:
        fb = torch.cat([fb, torch.zeros(MAX_LENGTH - n, MEL_BINS, dtype=fb.dtype)], 0)
    else:
        fb = fb[:MAX_LENGTH]
    return (fb - NORM_MEAN) / (NORM_STD * 2)


# ---- clip generators (deterministic: fixed numpy seeds) --------------------
def speech_like(n, rate, seed):
    """Voiced speech stand-in: harmonics of a gliding f0 under moving formant peaks,
    syllable-rate amplitude envelope, short noise bursts (fricatives)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 1.3 * t) + 5 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formants = [(500 + 300 * np.sin(2 * np.pi * 2.1 * t), 80),
                (1500 + 600 * np.sin(2 * np.pi * 1.7 * t + 1.0), 120),
                (2500 + 200 * np.sin(2 * np.pi * 0.9 * t), 160)]
    x = np.zeros(n)
    for k in range(1, int(0.5 * rate / 100)):
        fk = k * f0
        amp = sum(1.0 / (1.0 + ((fk - fc) / bw) ** 2) for fc, bw in formants) / k ** 0.5
        amp = amp * (fk < 0.5 * rate)
        x += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t - np.pi / 2) ** 2
    x *= env
    burst = rng.standard_normal(n) * (np.sin(2 * np.pi * 3.0 * t) > 0.9)
    x = x + 0.3 * burst * x.std()
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def tonal(n, rate):
    """Two steady tones and a DC offset (exercises per-frame DC removal)."""
    t = np.arange(n) / rate
    x = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3150 * t + 0.3) + 0.1
    return x.astype(np.float32)


def noise(n, seed):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    clips16 = {
        "speech": speech_like(19200, 16000, 1),        # 1.2 s, 118 frames > 100: cut
        "tonal": tonal(8000, 16000),                   # 0.5 s, 48 frames: padded
        "noise": noise(8000, 2),
        "silent": np.zeros(4800, np.float32),          # log floor everywhere
        "short": speech_like(300, 16000, 3),           # < one window: 0 frames
        "odd": speech_like(4001, 16000, 4),            # 4001 samples: 23 frames, 81 samples left over
        "exact": noise(400 + 160 * 9, 5),              # frames fit exactly: 10 frames
    }
    resampled = {
        "speech_22050": (speech_like(11025, 22050, 6) + noise(11025, 7) * 0.05, 22050),
        "speech_44100": (speech_like(22050, 44100, 8) + noise(22050, 9) * 0.05, 44100),
        "speech_48000": (speech_like(24000, 48000, 10) + noise(24000, 11) * 0.05, 48000),
    }
    path = os.path.join(out, "fbank.h5")
    with h5py.File(path, "w") as h:
        h.attrs.update(max_length=MAX_LENGTH, mel_bins=MEL_BINS, norm_mean=NORM_MEAN, norm_std=NORM_STD,
                       torch=str(torch.__version__), torchaudio=str(torchaudio.__version__))
        g = h.create_group("clips")

        def put(name, wave, rate, kind, wave16k):
            w64 = torch.from_numpy(wave16k.astype(np.float64)) if isinstance(wave16k, np.ndarray) else wave16k
            fb = kaldi_fbank(w64)
            fb32 = kaldi_fbank(w64.float())
            c = g.create_group(name)
            c.create_dataset("wave", data=wave.astype(np.float32))
            c.create_dataset("fbank", data=fb.numpy().astype(np.float32))
            c.create_dataset("features", data=pad_normalise(fb).numpy().astype(np.float32))
            f32diff = float((fb32.double() - fb).abs().max()) if fb.numel() else 0.0
            c.attrs.update(rate=rate, kind=kind, nframes=fb.shape[0], f32_vs_f64=f32diff)
            if kind == "16k":
                c.create_dataset("fbank_f32", data=fb32.numpy())
            print(f"{name:14s} rate={rate:5d} n={wave.size:6d} frames={fb.shape[0]:4d} "
                  f"torchaudio f32 vs f64 max|d|={f32diff:.2e}")
            return c

        for name, w in clips16.items():
            c = put(name, w, 16000, "16k", w)
            if name == "odd":
                fb64 = kaldi_fbank(torch.from_numpy(w.astype(np.float64)), bins=64)
                c.create_dataset("fbank64", data=fb64.numpy().astype(np.float32))
        for name, (w, rate) in resampled.items():
            w = w.astype(np.float32)
            r64 = torchaudio.functional.resample(torch.from_numpy(w.astype(np.float64)), rate, 16000)
            assert r64.numel() == math.ceil(w.size * 16000 / rate)
            c = put(name, w, rate, "resampled", r64)
            c.create_dataset("wave16k", data=r64.numpy().astype(np.float32))
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
