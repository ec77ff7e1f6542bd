"""What the detector's fallback passes cost: faces found on AFLW2000 half a (selection photos) and false faces on
images with no face, with and without the fallback (``headpose predict --fallback / --no-fallback``).

The no-face images are made here (none ship): uniform noise, smoothed noise, blown-up coarse noise, flat colours,
colour gradients and checkerboards, at 640×480, 450×450 and 1280×720, ``--n`` in all (seeded).

    python scripts/experiments/false_faces.py --photos ../shared/data/aflw2000 --n 300
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from headpose.detect import FaceDetector

SIZES = ((480, 640), (450, 450), (720, 1280))
KINDS = ("uniform noise", "smoothed noise", "coarse noise", "flat colour", "gradient", "checkerboard")


def no_face_image(k: int, rng: np.random.Generator) -> np.ndarray:
    h, w = SIZES[k % len(SIZES)]
    kind = k % len(KINDS)
    if kind == 0:
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == 1:
        return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), rng.uniform(1, 8))
    if kind == 2:
        s = int(rng.integers(4, 40))
        return cv2.resize(rng.integers(0, 256, (s, s, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    if kind == 3:
        return np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
    if kind == 4:
        ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * rng.uniform(0, 1, 3)
        return np.ascontiguousarray(np.broadcast_to(ramp, (h, w, 3)).astype(np.uint8))
    cells = (rng.integers(0, 2, (h // 20, w // 20, 1)) * 255).astype(np.uint8)
    return np.ascontiguousarray(cells.repeat(20, 0).repeat(20, 1).repeat(3, 2))


def main(photos: str, n: int, min_score: float) -> None:
    detectors = {"first pass only": FaceDetector("full", min_score=min_score, fallback=False),
                 "with the fallback": FaceDetector("full", min_score=min_score, fallback=True)}
    half_a = sorted(Path(photos).glob("*.jpg"))[::2]
    images = [cv2.imread(str(p)) for p in half_a]
    rng = np.random.default_rng(0)
    negatives = [no_face_image(k, rng) for k in range(n)]
    for name, det in detectors.items():
        found = sum(bool(det(im)) for im in images)
        false = [(KINDS[k % len(KINDS)], max(f.score for f in fs)) for k, im in enumerate(negatives)
                 if (fs := det(im))]
        scores = ", ".join(f"{s:.2f} ({kind})" for kind, s in sorted(false, key=lambda t: t[1]))
        print(f"{name}: AFLW2000 half a {found} of {len(images)} photos with a face found; "
              f"no-face images {len(false)} of {n} with a false face{': ' + scores if false else ''}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default="../shared/data/aflw2000")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--min-score", type=float, default=0.5)
    args = ap.parse_args()
    main(args.photos, args.n, args.min_score)
