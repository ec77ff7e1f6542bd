"""Candidate checkpoints against the shipped one on the selection data only (AFLW2000 half a, BIWI 02 14, aflw_wild
p13: the sets every recipe chose on), with a paired bootstrap over the crops for the 95% interval of the
difference in mean error (the ``val_mae`` of ``history.csv``: per-angle MAE over the three sets together, then the
mean of the three angles). The reported sets are never read.

    python scripts/experiments/compare_selection.py runs/wild_v2/best.keras runs/wild_v3/best.keras ...
"""

from __future__ import annotations

import sys

import numpy as np

from headpose.evaluate import predict_npz
from headpose.runtime import open_model

SELECTION = ("runs/data/aflw2000_a.npz", "runs/data/biwi_select.npz", "runs/data/wild_select.npz")


def errors(path: str) -> np.ndarray:
    model = open_model(path)
    return np.concatenate([np.abs(np.subtract(*predict_npz(model, s))) for s in SELECTION])


def score(e: np.ndarray) -> float:
    return float(np.nanmean(np.nanmean(e, axis=0)))


def main(shipped: str, *candidates: str, resamples: int = 500) -> None:
    base = errors(shipped)
    print(f"{shipped}: {score(base):.3f} (shipped)")
    rng = np.random.default_rng(0)
    for path in candidates:
        e = errors(path)
        idx = [rng.integers(0, len(base), len(base)) for _ in range(resamples)]
        diff = [score(e[i]) - score(base[i]) for i in idx]
        lo, hi = np.percentile(diff, [2.5, 97.5])
        print(f"{path}: {score(e):.3f}  minus shipped {score(e) - score(base):+.3f}  95% [{lo:+.3f}, {hi:+.3f}]")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
