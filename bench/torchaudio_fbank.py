#!/usr/bin/python3
"""Times torchaudio.compliance.kaldi.fbank with AST's settings on one thread.

  /usr/bin/python3 bench/torchaudio_fbank.py --seconds S --clips N
prints: torchaudio fbank seconds=<S> clips_per_s=<y>

Same work as `petal bench fbank`: a float32 16 kHz waveform already in memory,
raw log-mel only (no decode, no pad/normalise); N clips in 5 rounds, fastest
round reported.
"""
import argparse
import math
import time

import torch
import torchaudio


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--clips", type=int, default=100)
    a = ap.parse_args()
    torch.set_num_threads(1)
    n = int(a.seconds * 16000)
    g = torch.Generator().manual_seed(1)
    t = torch.arange(n, dtype=torch.float32)
    wave = (0.05 * torch.randn(n, generator=g) + 0.3 * torch.sin(2 * math.pi * 220.0 * t / 16000)).unsqueeze(0)

    def fbank():
        return torchaudio.compliance.kaldi.fbank(
            wave, htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning",
            num_mel_bins=128, dither=0.0, frame_shift=10)

    for _ in range(3):
        fbank()
    # As `petal bench fbank`: the clips in 5 equal rounds, fastest round kept
    # (least disturbed by other processes on a shared machine).
    rounds, per, best = 5, max(a.clips // 5, 1), 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per):
            fbank()
        best = max(best, per / (time.perf_counter() - t0))
    print(f"torchaudio fbank seconds={a.seconds:g} clips_per_s={best:.1f}")


if __name__ == "__main__":
    main()
