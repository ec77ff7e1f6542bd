"""The detector-crop margin (``crop_margin`` of a model card), end to end: each model at each margin through
``HeadPoseEstimator`` (detector, crop, pose) on

* AFLW2000 photos, one fixed half (``--half a``: the selection half; ``b`` only to report);
* BIWI crops of some sequences (``--biwi 02,14``: the selection sequences; ``04,11,17,22`` only to report), every
  second frame. The shared crops are tight (about 124 px, from a frontal-face detector), so each is first set in
  a canvas three times its side, filled beyond the crop with the crop mirrored and defocused
  (:func:`headpose.detect.crop_padded`, ``"blur"``), for the detector to find it as it would in a frame.

    python scripts/experiments/select_margin.py full lite --margins 0.15,0.2,0.25,0.3
    python scripts/experiments/select_margin.py full lite --margins 0.2,0.3 --half b --biwi 04,11,17,22

Prints the MAE per angle and their mean, per set, model and margin.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from headpose import HeadPoseEstimator  # noqa: E402
from headpose.data.items import read_image  # noqa: E402
from headpose.data.labels import read_biwi_bin  # noqa: E402
from headpose.detect import crop_padded  # noqa: E402
from headpose.evaluate import evaluate_photos  # noqa: E402

SHARED = Path("../shared/data")


def biwi_canvases(seqs: list[str]):
    """(canvas, [yaw, pitch, roll]) for every second BIWI crop of ``seqs``, each crop set in a canvas three times
    its side, filled beyond it with the crop mirrored and defocused."""
    for f in sorted(f for s in seqs for f in (SHARED / "biwi_crops" / s).glob("*_rgb.jpg"))[::2]:
        img = read_image(f)
        h, w = img.shape[:2]
        yield (crop_padded(img, (-w, -h, 2 * w, 2 * h), "blur"),
               read_biwi_bin(f.with_name(f.name.replace("_rgb.jpg", "_pose.bin"))))


def biwi_canvas(model: str, margin: float, seqs: list[str], flip: bool | None = None) -> dict:
    """MAE of ``model`` at ``margin`` on every second BIWI crop of ``seqs``, each set in a 3× blur-filled canvas."""
    est = HeadPoseEstimator(model, margin=margin, flip=flip)
    pred, true, n = [], [], 0
    for canvas, pose in biwi_canvases(seqs):
        n += 1
        faces = est.predict(canvas)
        if faces:
            pred.append(faces.angles[0])
            true.append(pose)
    e = np.abs(np.array(pred) - np.array(true)).mean(axis=0)
    return {"n": n, "found": len(pred), **dict(zip(("yaw", "pitch", "roll"), e)), "mean": float(e.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--margins", default="0.15,0.2,0.25,0.3,0.35")
    ap.add_argument("--half", default="a", choices=("a", "b"))
    ap.add_argument("--biwi", default="02,14", help="BIWI sequences, comma-separated")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                    help="mirror averaging (default: the model's card; one pass for a bare .keras)")
    a = ap.parse_args()
    for model in a.models:
        for m in (float(v) for v in a.margins.split(",")):
            rows = {f"AFLW2000 {a.half}": evaluate_photos(model, SHARED / "aflw2000", half=a.half, margin=m,
                                                          quiet=True, flip=a.flip),
                    f"BIWI {a.biwi}": biwi_canvas(model, m, a.biwi.split(","), a.flip)}
            for name, r in rows.items():
                print(f"{model:6s} margin {m:.2f}  {name:22s} found {r['found']}/{r['n']}  yaw {r['yaw']:.2f}  "
                      f"pitch {r['pitch']:.2f}  roll {r['roll']:.2f}  mean {r['mean']:.3f}", flush=True)


if __name__ == "__main__":
    main()
