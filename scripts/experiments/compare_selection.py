"""Candidate checkpoints against the shipped one on the selection data only (AFLW2000 half a, BIWI 02 14, aflw_wild
p13: the sets every recipe chose on), with a paired bootstrap over the crops for the 95% interval of the
difference in mean error (the ``val_mae`` of ``history.csv``: per-angle MAE over the three sets together, then the
mean of the three angles). The reported sets are never read.

    python scripts/experiments/compare_selection.py runs/wild_v2/best.keras runs/wild_v3/best.keras ...
    python scripts/experiments/compare_selection.py --sets runs/data/aflw2000_a.npz,runs/data/biwi_select.npz A B

``--sets`` replaces the three selection packs (comma-separated); each set's own mean error is printed too.
``--flip`` reads every model with its mirror image (``FlipAverage``); without it, one pass each (as training's
``val_mae``), whatever the models' cards say.
"""

from __future__ import annotations

import argparse

import numpy as np

from headpose.evaluate import predict_npz
from headpose.runtime import open_model

SELECTION = ("runs/data/aflw2000_a.npz", "runs/data/biwi_select.npz", "runs/data/wild_select.npz")


def errors(path: str, sets=SELECTION, flip: bool = False) -> tuple[np.ndarray, list[float]]:
    model = open_model(path, flip=flip)
    per_set = [np.abs(np.subtract(*predict_npz(model, s))) for s in sets]
    return np.concatenate(per_set), [score(e) for e in per_set]


def score(e: np.ndarray) -> float:
    return float(np.nanmean(np.nanmean(e, axis=0)))


def main(shipped: str, *candidates: str, sets=SELECTION, flip: bool = False, resamples: int = 500) -> None:
    print("sets:", ", ".join(sets), "(mirror-averaged)" if flip else "(one pass)")
    base, each = errors(shipped, sets, flip)
    print(f"{shipped}: {score(base):.3f} (shipped)  per set {' '.join(f'{v:.3f}' for v in each)}")
    rng = np.random.default_rng(0)
    for path in candidates:
        e, each = errors(path, sets, flip)
        idx = [rng.integers(0, len(base), len(base)) for _ in range(resamples)]
        diff = [score(e[i]) - score(base[i]) for i in idx]
        lo, hi = np.percentile(diff, [2.5, 97.5])
        print(f"{path}: {score(e):.3f}  minus shipped {score(e) - score(base):+.3f}  95% [{lo:+.3f}, {hi:+.3f}]"
              f"  per set {' '.join(f'{v:.3f}' for v in each)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shipped")
    ap.add_argument("candidates", nargs="+")
    ap.add_argument("--sets", default=",".join(SELECTION))
    ap.add_argument("--flip", action="store_true", help="read every model with its mirror image too")
    args = ap.parse_args()
    main(args.shipped, *args.candidates, sets=tuple(args.sets.split(",")), flip=args.flip)
