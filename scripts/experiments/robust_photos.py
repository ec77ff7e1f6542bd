"""End to end on worse cameras: AFLW2000 photos made worse as a whole (sensor noise, JPEG, a low-resolution camera,
low light), then detector + crop + pose as ``HeadPoseEstimator`` runs them; MAE and faces found per condition.

    python scripts/experiments/robust_photos.py full runs/prev_s16/headpose_ssrnet_mt.tflite --half b

The photos are degraded once per condition with a fixed seed into a temporary folder (the ``.mat`` labels linked
beside them), so every model and the detector read the same pixels. The defects are
:func:`headpose.augment.degrade_crop`'s, applied to the whole 450×450 photo: a face of about 150-250 px there
is about 40-60 px at "camera at 1/4 resolution".
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from headpose.augment import degrade_crop
from headpose.evaluate import evaluate_photos, labelled_photos

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from robustness import dark  # noqa: E402  (scripts/robustness.py: the crops' version of these conditions)

SRC = Path("../shared/data/aflw2000")


def conditions(rng) -> dict:
    return {
        "clean": None,
        "noise σ10": lambda x: degrade_crop(x, 0, 0.0, 0, 10.0, 0, rng),
        "noise σ20": lambda x: degrade_crop(x, 0, 0.0, 0, 20.0, 0, rng),
        "JPEG q10": lambda x: degrade_crop(x, 0, 0.0, 0, 0.0, 10, rng),
        "camera at 1/4 resolution": lambda x: degrade_crop(x, 0, 0.0, x.shape[0] // 4, 0.0, 0, rng),
        "low light (γ 2.5) + noise σ8": lambda x: degrade_crop(dark(x, 2.5), 0, 0.0, 0, 8.0, 0, rng),
    }


def degraded_copy(items, fn, out: Path) -> Path:
    out.mkdir(parents=True)
    for it in items:
        img = cv2.imread(str(it.image))
        cv2.imwrite(str(out / (Path(it.image).stem + ".png")), fn(img))  # PNG: no compression beyond fn's
        os.symlink(Path(it.label).resolve(), out / Path(it.label).name)
    return out


def main(models, half: str) -> None:
    items = labelled_photos(SRC, half)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, fn) in enumerate(conditions(rng).items()):
            src = SRC if fn is None else degraded_copy(items, fn, Path(tmp) / f"c{k}")
            row = []
            for m in models:
                r = evaluate_photos(m, src, half=half if fn is None else None, quiet=True)
                row.append(f"{r['mean']:.2f} ({r['found']}/{r['n']} found)")
            print(f"{name:<30}" + "".join(f"{c:>26}" for c in row), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--half", default="a", choices=("a", "b"))
    a = ap.parse_args()
    print(f"AFLW2000 half {a.half}, end to end:", ", ".join(a.models))
    main(a.models, a.half)
