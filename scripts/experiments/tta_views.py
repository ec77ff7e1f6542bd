"""More test-time views than the mirror image, on the selection data only (nothing reported is read).

``crops``: each crop of AFLW2000 half a, BIWI 02 14 and ``aflw_wild`` p13 (the ``.npz`` packs, after the ±99°
filter) read as it is and zoomed in about its centre (the central 1/Z of the crop, resized back), each with its
mirror image; prints the MAE of each view and of the mirror-averaged pairs and fours.

``photos``: end to end, the detector once per photo (AFLW2000 half a, and BIWI 02 14 crops set in a 3× canvas as
``select_margin.py`` does), the best box holding the face cropped at several margins, each crop read as the model
reads by default (the full model: with its mirror image); prints the MAE at each margin and of the averages of
every pair and triple of margins.

    python scripts/experiments/tta_views.py crops full --zooms 1.05,1.1,1.15,1.2
    python scripts/experiments/tta_views.py photos full --margins 0.15,0.2,0.25,0.3,0.35
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from compare_selection import SELECTION  # noqa: E402
from select_margin import SHARED, biwi_canvases  # noqa: E402

from headpose import HeadPoseEstimator  # noqa: E402
from headpose.data.items import read_image  # noqa: E402
from headpose.data.mat import landmark_box, read_mat  # noqa: E402
from headpose.data.npz import angle_filter, load_npz  # noqa: E402
from headpose.detect import crop_face  # noqa: E402
from headpose.evaluate import face_at, labelled_photos, mae_table  # noqa: E402
from headpose.geometry import flip_ypr  # noqa: E402
from headpose.runtime import open_model, prepare_input  # noqa: E402


def zoom_in(x: np.ndarray, z: float) -> np.ndarray:
    """The central 1/z of each crop, resized back to the crop's size."""
    if z == 1.0:
        return x
    s = x.shape[1]
    c = int(round(s / z))
    o = (s - c) // 2
    return np.stack([cv2.resize(im[o:o + c, o:o + c], (s, s), interpolation=cv2.INTER_AREA).reshape(im.shape)
                     for im in x])


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    return mae_table(pred, true)["mean"]


def crops(model: str, zooms: list[float]) -> None:
    runner = open_model(model, flip=False)
    for path in SELECTION:
        images, poses = load_npz(path)
        keep = np.flatnonzero(angle_filter(poses))
        x = prepare_input(np.asarray(images[keep]), runner.channels, runner.img_size)
        y = poses[keep]
        one, pair = {}, {}
        for z in [1.0, *zooms]:
            xz = zoom_in(x, z)
            one[z] = runner(xz, batch_size=256)
            pair[z] = (one[z] + flip_ypr(runner(xz[:, :, ::-1], batch_size=256))) / 2
        row = [f"one pass {mae(one[1.0], y):.3f}", f"mirror-averaged {mae(pair[1.0], y):.3f}"]
        for z in zooms:
            row.append(f"zoom {z}: one pass {mae(one[z], y):.3f}, mirror-averaged {mae(pair[z], y):.3f}, "
                       f"with zoom 1 {mae((pair[1.0] + pair[z]) / 2, y):.3f}")
        print(f"{path} ({len(y)}): " + "; ".join(row), flush=True)


def photos(model: str, margins: list[float]) -> None:
    est = HeadPoseEstimator(model)

    def read(img, face):
        if face is None:
            return None
        return est.predict_crops(np.stack([crop_face(img, face.box, m, est.size) for m in margins]))

    sets = {"AFLW2000 a photos": [], "BIWI 02 14 canvases": []}
    for it in labelled_photos(SHARED / "aflw2000", "a"):
        pose, pt2d = read_mat(it.label)
        if np.abs(pose).max() <= 99:
            x0, y0, x1, y1 = landmark_box(pt2d)
            img = read_image(it.image)
            face = face_at(est.detector.detect(img), ((x0 + x1) / 2, (y0 + y1) / 2))
            sets["AFLW2000 a photos"].append((read(img, face), pose))
    for canvas, true in biwi_canvases(["02", "14"]):
        faces = est.detector.detect(canvas)
        sets["BIWI 02 14 canvases"].append((read(canvas, max(faces, key=lambda f: f.score) if faces else None), true))
    for name, rows in sets.items():
        found = [(p, t) for p, t in rows if p is not None]
        pred = np.array([p for p, _ in found])
        true = np.array([t for _, t in found], np.float32)
        out = [f"{m}: {mae(pred[:, i], true):.3f}" for i, m in enumerate(margins)]
        for k in (2, 3):
            for c in itertools.combinations(range(len(margins)), k):
                out.append("+".join(str(margins[i]) for i in c) + f": {mae(pred[:, list(c)].mean(1), true):.3f}")
        print(f"{name} (found {len(found)}/{len(rows)}): " + "  ".join(out), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("crops", "photos"))
    ap.add_argument("model")
    ap.add_argument("--zooms", default="1.05,1.1,1.15,1.2")
    ap.add_argument("--margins", default="0.15,0.2,0.25,0.3,0.35")
    a = ap.parse_args()
    if a.mode == "crops":
        crops(a.model, [float(v) for v in a.zooms.split(",")])
    else:
        photos(a.model, [float(v) for v in a.margins.split(",")])
