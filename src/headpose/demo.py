"""``headpose demo``: the bundled model on a photo every installation has (no download, no data folder)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from headpose.errors import HeadposeError
from headpose.estimator import HeadPoseEstimator
from headpose.io import writable_dir, write_atomic
from headpose.outputs import annotate, report_rows, write_image


def demo_photo() -> np.ndarray:
    """The demo photo (BGR): Grace Hopper's 1984 US Navy portrait (public domain), as matplotlib (a core
    dependency) ships it in its sample data — so the demo needs no download and the repository no copy of it."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if photo is None:
        raise HeadposeError(f"{path}: the demo photo (matplotlib sample data) is missing or unreadable; "
                            "reinstall matplotlib")
    return photo


DEMO_PANELS = ("photo", "mirrored", "rolled 20°")


def demo_image() -> np.ndarray:
    """The demo input, built from :func:`demo_photo` (public domain): the photo,
    its mirror image (yaw and roll change sign) and the photo turned by 20° in the image plane (roll), side by
    side, 3 faces in one 768×300 BGR image."""
    photo = demo_photo()
    panel = cv2.resize(photo, (256, 300), interpolation=cv2.INTER_AREA)
    h, w = panel.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h * 0.45), 20.0, 1.0)
    rolled = cv2.warpAffine(panel, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.hstack([panel, panel[:, ::-1], rolled])


def demo(out="headpose-demo", model=None, quiet: bool = False) -> list[dict]:
    """``headpose demo``: predict on the bundled photo (no download, no data folder), write the annotated image
    ``OUT/demo.jpg``, the input ``OUT/demo-input.jpg`` and the report ``OUT/demo.jsonl``; print the angles.
    Returns the report rows."""
    out = writable_dir(out, f"--out {out}")
    image = demo_image()
    est = HeadPoseEstimator(model)
    poses = sorted(est(image), key=lambda f: f.box[0])
    source = "demo:grace_hopper"
    rows = report_rows(source, 0, poses)
    write_image(out / "demo-input.jpg", image)
    annotated = write_image(out / "demo.jpg", annotate(image, poses))
    report = out / "demo.jsonl"
    write_atomic(report, "".join(json.dumps(r) + "\n" for r in rows))
    if not quiet:
        print(f"headpose demo: {len(poses)} face{'s' * (len(poses) != 1)} in a photo of Grace Hopper "
              f"(US Navy, public domain): as is, mirrored, and rolled 20° (model: {est.model_path.name})")
        for i, p in enumerate(poses):
            label = DEMO_PANELS[min(int((p.box[0] + p.box[2]) / 2 // 256), 2)]
            print(f"  face {i + 1} ({label}): yaw {p.yaw:+6.1f}°  pitch {p.pitch:+6.1f}°  roll {p.roll:+6.1f}°  "
                  f"(detector score {p.score:.2f})")
        print(f"wrote {annotated} (the input with the axes drawn), {report} (the angles) and {out / 'demo-input.jpg'} "
              "(the input)")
    return rows
