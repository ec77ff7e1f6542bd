"""Pack a render folder into ``.npz`` with the renderer's known face boxes (no detector).

``headpose prepare folder`` crops renders with BlazeFace, like real photos; BlazeFace misses many faces beyond
about 60° of yaw or 45° of pitch, so a random-pose render set loses exactly its hardest poses there. This
packer crops each render around the face box written in its ``.txt`` (second line ``x0 y0 x1 y1``: the
projected 468 face points) instead, so every pose is kept.

Crop: the box squared about its centre, widened by ``margin`` of its side on every side
(:func:`headpose.detect.crop_face`). The default 0.14 matches the BIWI crops: MediaPipe's points on 100 of
them give crop side / point-box side = 1.27 (median; 10-90 %: 1.16-1.42), centred within 2 %. With
``jitter``, each crop draws its ratio uniformly from 1.16-1.42 and its centre by a normal shift of 3.5 % of the side
(BIWI's point-box centres sit 0.5-5 % off their crop centres, depending on the pose). ``--ratio LO,HI`` draws
the ratio from another range: 1.4,2.0 frames renders as the AFLW2000 protocol crop (landmark box widened by 0.6,
about 1.8× the point box) and the prediction crop (BlazeFace box widened by 0.3, about 1.6×) frame real faces.

    python -m headpose.synth.pack RENDERS OUT.npz [--size 64] [--margin 0.14] [--no-jitter] [--shift 0.035]
                                                  [--ratio 1.16,1.42]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from headpose.errors import HeadposeError

MARGIN = 0.14
RATIO_RANGE = (1.16, 1.42)
SHIFT = 0.035


def pack_renders(src, out, size: int = 64, margin: float = MARGIN, jitter: bool = True, seed: int = 0,
                 quiet: bool = False, shift: float = SHIFT, ratio: tuple[float, float] = RATIO_RANGE) -> dict:
    """Crop every ``src/*/NAME.png`` with its ``.txt`` box into ``out`` (.npz: image, pose, img_size).
    ``shift``: with ``jitter``, the standard deviation of the crop centre's shift, as a fraction of the side;
    ``ratio``: with ``jitter``, the range of crop side / face-box side."""
    from tqdm import tqdm

    from headpose.data.npz import save_npz
    from headpose.detect import crop_face
    from headpose.synth.render import read_label

    src = Path(src)
    if not src.is_dir():
        raise HeadposeError(f"{src}: no such folder")
    pngs = sorted(src.glob("*/*.png")) + sorted(src.glob("*.png"))
    if not pngs:
        raise HeadposeError(f"{src}: no renders (*/NAME.png)")
    lo, hi = (float(r) for r in ratio)
    if not 1.0 <= lo <= hi:
        raise HeadposeError(f"--ratio {lo:g},{hi:g}: expected 1 <= LO <= HI (crop side / face-box side)")
    rng = np.random.default_rng(seed)
    images = np.empty((len(pngs), size, size, 3), np.uint8)
    poses = np.empty((len(pngs), 3), np.float32)
    groups = []
    n, skipped = 0, []
    t0 = time.perf_counter()
    for p in tqdm(pngs, unit="img", desc="pack", disable=quiet, file=sys.stderr):
        try:
            ypr, box = read_label(p.with_suffix(".txt"))
        except (OSError, ValueError, IndexError):
            skipped.append(f"{p}: no readable .txt label")
            continue
        if box is None:
            skipped.append(f"{p}: no face box in its .txt")
            continue
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            skipped.append(f"{p}: image does not load")
            continue
        x0, y0, x1, y1 = (float(v) for v in box)
        m = margin
        if jitter:
            m = (rng.uniform(lo, hi) - 1) / 2
            side = max(x1 - x0, y1 - y0)
            dx, dy = rng.normal(0, shift * side, 2)
            x0, x1, y0, y1 = x0 + dx, x1 + dx, y0 + dy, y1 + dy
        images[n] = crop_face(img, (x0, y0, x1, y1), m, size)
        poses[n] = ypr
        groups.append(p.parent.name)
        n += 1
    if n == 0:
        raise HeadposeError(f"{src}: nothing packed ({len(skipped)} skipped)")
    save_npz(out, images[:n], poses[:n])
    seconds = time.perf_counter() - t0
    if not quiet:
        print(f"synth pack: {n} crops from {len(set(groups))} meshes in {seconds:.1f} s → {out}"
              + (f"; skipped {len(skipped)}" if skipped else ""), file=sys.stderr)
        for s in skipped[:10]:
            print(f"  {s}", file=sys.stderr)
    return {"packed": n, "skipped": skipped, "seconds": seconds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m headpose.synth.pack", description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--margin", type=float, default=MARGIN)
    p.add_argument("--no-jitter", dest="jitter", action="store_false")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shift", type=float, default=SHIFT,
                   help=f"crop-centre jitter, standard deviation as a fraction of the side (default {SHIFT})")
    p.add_argument("--ratio", type=lambda t: tuple(float(v) for v in t.split(",")), default=RATIO_RANGE,
                   metavar="LO,HI", help="with jitter: range of crop side / face-box side (default 1.16,1.42)")
    a = p.parse_args(argv)
    try:
        if len(a.ratio) != 2:
            raise HeadposeError(f"--ratio: expected LO,HI, got {len(a.ratio)} values")
        pack_renders(a.src, a.out, a.size, a.margin, a.jitter, a.seed, shift=a.shift, ratio=a.ratio)
    except HeadposeError as e:
        print(f"headpose: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
