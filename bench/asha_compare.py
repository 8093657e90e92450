#!/usr/bin/env python3
"""Compares search strategies on one study: the full grid's store, an early-stopped
store (ASHA or median) of the same trials, and random search at the early-stopped
sweep's budget (k = its epochs / R trials of the grid drawn at random, run fully;
its expected best from many draws, computed from the grid's store).
Prints one line: best valid accuracy and epochs trained of each."""
import random, sys
import h5py

grid, early, label = sys.argv[1], sys.argv[2], sys.argv[3]
fg, fe = h5py.File(grid + "/results.h5"), h5py.File(early + "/results.h5")
g, e = fg["/trials"][()], fe["/trials"][()]
assert all(r["status"] == b"done" for r in g), "the grid is not complete"
full = int(sum(r["epochs"] for r in g))
best = float(max(r["best_valid_acc"] for r in g))
spent = int(fe.attrs["epochs_spent"])
ebest = float(max(r["best_valid_acc"] for r in e if r["status"] == b"done"))
R = int(max(r["epochs"] for r in g))
k = max(1, spent // R)
vals = [float(r["best_valid_acc"]) for r in g]
rng = random.Random(1)
draws = [max(rng.sample(vals, k)) for _ in range(2000)]
rbest = sum(draws) / len(draws)
rhit = sum(d >= best - 0.01 for d in draws) / len(draws)
print("asha study=%s trials=%d max_epochs=%d grid_best=%.4f grid_epochs=%d "
      "random_trials=%d random_best_mean=%.4f random_within_1pt=%.2f random_epochs=%d "
      "%s_best=%.4f %s_epochs=%d %s_epoch_frac=%.3f %s_done=%d %s_gap_pts=%.2f"
      % (label.split(":")[0], len(g), R, best, full, k, rbest, rhit, k * R, label.split(":")[1], ebest,
         label.split(":")[1], spent, label.split(":")[1], spent / full, label.split(":")[1],
         sum(r["status"] == b"done" for r in e), label.split(":")[1], 100 * (best - ebest)))
