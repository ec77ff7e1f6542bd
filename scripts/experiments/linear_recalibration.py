"""Is the model's error a scale or offset a final linear layer could remove? Selection data only.

Reads AFLW2000 half a, BIWI 02 14 and ``aflw_wild`` p13 with a model (mirror-averaged with ``--flip``) and prints,
per set and angle, the mean signed error and the line ``prediction = slope × truth + offset``; then fits
``truth = A × prediction + B`` per angle on two of the three sets and applies it to the third (each set held out
in turn), and on all three together applied to each (in-sample: the most such a layer could give here).

    python scripts/experiments/linear_recalibration.py src/headpose/weights/headpose_ssrnet_mt.keras --flip
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from compare_selection import SELECTION  # noqa: E402

from headpose.evaluate import predict_npz  # noqa: E402
from headpose.runtime import open_model  # noqa: E402

ANGLES = ("yaw", "pitch", "roll")


def fit_and_apply(pred, true, train, test) -> tuple[float, float, float, float]:
    """(MAE before, MAE after, A, B) on ``test`` of the line fitted on ``train`` for one angle."""
    train = train & ~np.isnan(true)
    test = test & ~np.isnan(true)
    a, b = np.polyfit(pred[train], true[train], 1)
    return (float(np.mean(np.abs(pred[test] - true[test]))), float(np.mean(np.abs(a * pred[test] + b - true[test]))),
            float(a), float(b))


def main(model_path: str, flip: bool) -> None:
    model = open_model(model_path, flip=flip)
    pairs = [predict_npz(model, s) for s in SELECTION]
    pred = np.concatenate([p for p, _ in pairs])
    true = np.concatenate([t for _, t in pairs])
    which = np.concatenate([np.full(len(p), i) for i, (p, _) in enumerate(pairs)])
    print(model_path, "(mirror-averaged)" if flip else "(one pass)")
    for i, name in enumerate(SELECTION):
        err = pred[which == i] - true[which == i]
        mae, bias = np.nanmean(np.abs(err), 0), np.nanmean(err, 0)
        print(f"{name}: MAE {np.round(mae, 2)}  mean signed error {np.round(bias, 2)}")
        for k, angle in enumerate(ANGLES):
            ok = (which == i) & ~np.isnan(true[:, k])
            if ok.sum() >= 10:
                slope, offset = np.polyfit(true[ok, k], pred[ok, k], 1)
                print(f"  {angle}: prediction = {slope:.3f} × truth {offset:+.2f}")
    for label, rows in [("held out", [(which != i, which == i, i) for i in range(len(SELECTION))]),
                        ("in-sample", [(which >= 0, which == i, i) for i in range(len(SELECTION))])]:
        for train, test, i in rows:
            cells = [fit_and_apply(pred[:, k], true[:, k], train, test) for k in range(len(ANGLES))]
            print(f"{label:9s} {SELECTION[i]}: " + "  ".join(
                f"{angle} {before:.2f} -> {after:.2f} (×{a:.3f} {b:+.2f})"
                for angle, (before, after, a, b) in zip(ANGLES, cells)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--flip", action="store_true", help="read each crop with its mirror image too")
    args = ap.parse_args()
    main(args.model, args.flip)
