"""BIWI Kinect head pose database, in both layouts it comes in.

(a) The original database: ``hpdb/NN/frame_NNNNN_rgb.png`` with ``frame_NNNNN_pose.txt`` (3×3 rotation, then
    the head centre). The face is found with BlazeFace and cropped with :func:`headpose.detect.crop_face`
    (margin :data:`headpose.detect.DEFAULT_MARGIN` = 0.4 unless given).
(b) Face crops with BIWI's ``db_annotations`` labels: ``NN/frame_NNNNN_rgb.{png,jpg}`` with
    ``frame_NNNNN_pose.bin`` (6 float32: centre x, y, z, pitch, yaw, roll). The crop is used as it is,
    resized (no margin).

Which one an image is: a ``.txt`` label means a full frame; with a ``.bin`` label, an image whose shorter
side is at least :data:`FRAME_MIN_SIDE` px is a full frame (640×480) and goes through the detector too, a
smaller one is a crop. Labels always go through the rotation-matrix conversion of the data README
(:func:`headpose.data.labels.read_biwi_txt` / :func:`~headpose.data.labels.read_biwi_bin`), never the raw
Euler angles. Group = sequence = the image's folder name (``01`` … ``24``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headpose.data.items import BAD_LABEL, NO_LABEL, Item, Skip, detect_crop, find_images, read_image
from headpose.data.labels import read_biwi_bin, read_biwi_txt
from headpose.errors import HeadposeError

FRAME_MIN_SIDE = 240  # BIWI crops are ~100-150 px; Kinect frames are 640×480


def _label_for(img: Path) -> Path | None:
    stem = img.stem.removesuffix("_rgb")
    for ext in (".txt", ".bin"):
        p = img.with_name(f"{stem}_pose{ext}")
        if p.exists():
            return p
    return None


def find(src: Path) -> list[Item]:
    """Every ``*_rgb`` image under ``src`` (other images, e.g. depth renderings, are not BIWI frames)."""
    items = []
    for img in find_images(src):
        if not img.stem.endswith("_rgb"):
            continue
        label = _label_for(img)
        items.append(Item(str(img), str(label) if label else None, img.parent.name))
    return items


def read_label(path: str) -> np.ndarray:
    try:
        return read_biwi_txt(path) if path.endswith(".txt") else read_biwi_bin(path)
    except (HeadposeError, ValueError, OSError) as e:
        raise Skip(BAD_LABEL, str(e).removeprefix(f"{path}: ")) from None


def load(item: Item, size: int, margin: float | None) -> tuple[np.ndarray, np.ndarray]:
    from headpose.detect import DEFAULT_MARGIN, resize_square

    if item.label is None:
        raise Skip(NO_LABEL, "no frame_*_pose.txt or .bin beside it")
    pose = read_label(item.label)
    image = read_image(item.image)
    if item.label.endswith(".txt") or min(image.shape[:2]) >= FRAME_MIN_SIDE:
        crop = detect_crop(image, DEFAULT_MARGIN if margin is None else margin, size)
    else:
        crop = resize_square(image, size)
    return crop, pose
