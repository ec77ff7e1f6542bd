"""300W-LP and AFLW2000-3D: ``NAME.jpg`` with ``NAME.mat`` (``Pose_Para``, ``pt2d``) beside it.

300W-LP's subsets (AFW, HELEN, IBUG, LFPW and their ``_Flip`` twins) are found recursively; only images are
listed, so its ``landmarks`` folder of ``.mat`` files without images is ignored. The crop is the box of the
valid ``pt2d`` landmarks (coordinates ≤ 0 dropped: AFLW2000 marks missing points with -1), widened by
``margin`` × its width left and right and × its height top and bottom (FSA-Net's rule,
:func:`headpose.detect.expand_box`), clipped to the image and resized. Labels: ``Pose_Para[0, :3]``
(pitch, yaw, roll radians) → [yaw, pitch, roll] degrees (:func:`headpose.data.labels.pose_para_to_ypr`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headpose.data.items import (
    BAD_LABEL,
    NO_LABEL,
    NO_LANDMARKS,
    NO_POSE_PARA,
    Item,
    Skip,
    find_images,
    read_image,
)
from headpose.data.labels import pose_para_to_ypr

DEFAULT_MARGIN = 0.6  # FSA-Net's margin around the landmark box


def find(src: Path) -> list[Item]:
    """Every image under ``src``; its ``.mat`` (same stem) or None. Group = subset folder (e.g. ``HELEN_Flip``)."""
    items = []
    for img in find_images(src):
        mat = img.with_suffix(".mat")
        group = img.parent.relative_to(src).as_posix() if img.parent != src else ""
        items.append(Item(str(img), str(mat) if mat.exists() else None, group))
    return items


def read_mat(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(pose [yaw, pitch, roll] degrees, pt2d 2×K) from a 300W-LP / AFLW2000 ``.mat``; Skip if unusable."""
    import scipy.io

    try:
        m = scipy.io.loadmat(path)
    except Exception as e:  # noqa: BLE001 (truncated, not a MATLAB file, ...)
        raise Skip(BAD_LABEL, f"cannot read .mat ({type(e).__name__}: {e})") from None
    if "Pose_Para" not in m:
        raise Skip(NO_POSE_PARA, f"keys: {', '.join(k for k in m if not k.startswith('__'))}")
    para = np.asarray(m["Pose_Para"], dtype=np.float64).ravel()
    if para.size < 3 or not np.isfinite(para[:3]).all():
        raise Skip(BAD_LABEL, f"Pose_Para has {para.size} values (need 3 finite: pitch, yaw, roll)")
    pt2d = np.asarray(m.get("pt2d", np.zeros((2, 0))), dtype=np.float64)
    return pose_para_to_ypr(para), pt2d


def landmark_box(pt2d: np.ndarray) -> tuple[float, float, float, float]:
    """Box of the valid landmarks (both coordinates > 0); Skip if none."""
    pts = np.asarray(pt2d, dtype=np.float64)
    if pts.ndim != 2 or 2 not in pts.shape:
        raise Skip(NO_LANDMARKS, f"pt2d has shape {pts.shape}")
    if pts.shape[0] != 2:
        pts = pts.T
    x, y = pts
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        raise Skip(NO_LANDMARKS, f"{int(ok.sum())} valid pt2d points")
    x, y = x[ok], y[ok]
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def load(item: Item, size: int, margin: float | None) -> tuple[np.ndarray, np.ndarray]:
    from headpose.detect import expand_box, resize_square

    if item.label is None:
        raise Skip(NO_LABEL, "no .mat beside it")
    pose, pt2d = read_mat(item.label)
    box = landmark_box(pt2d)
    image = read_image(item.image)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = expand_box(box, DEFAULT_MARGIN if margin is None else margin, w, h)
    if x1 <= x0 or y1 <= y0:
        raise Skip(NO_LANDMARKS, f"landmark box {box} lies outside the {w}×{h} image")
    return resize_square(image[y0:y1, x0:x1], size), pose
