"""What every dataset reader shares: a work item, the reasons an item is skipped, image reading, detection.

A reader (``mat``, ``biwi``, ``folder``) lists :class:`Item` s (cheap, no image read) and loads one item into
``(crop uint8 S×S×3 BGR, pose float32 [yaw, pitch, roll])`` or raises :class:`Skip` naming the reason.
``headpose.data.prepare`` runs the loads in worker processes and counts the skips by reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from headpose.io import IMAGE_EXTS

# Skip reasons (the report's categories).
UNREADABLE_IMAGE = "unreadable image"
NO_POSE_PARA = "no Pose_Para in .mat"
BAD_LABEL = "bad label file"
NO_LABEL = "image without label"
NO_FACE = "no face found"
NO_LANDMARKS = "no valid landmarks"


class Skip(Exception):
    """This item cannot be packed: ``reason`` is one of the categories above, ``detail`` says why."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Item:
    """One image to pack. ``group``: the sequence / identity it belongs to (for splits)."""

    image: str
    label: str | None
    group: str


def read_image(path: str) -> np.ndarray:
    """BGR uint8 H×W×3, or :class:`Skip` (unreadable image)."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as e:
        raise Skip(UNREADABLE_IMAGE, str(e)) from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise Skip(UNREADABLE_IMAGE, "cannot decode")
    return image


def find_images(src: Path) -> list[Path]:
    """Images under ``src`` (recursive, sorted, hidden files and folders skipped)."""
    out = []
    for p in src.rglob("*"):
        rel = p.relative_to(src)
        if p.suffix.lower() in IMAGE_EXTS and not any(part.startswith(".") for part in rel.parts) and p.is_file():
            out.append(p)
    return sorted(out)


_DETECTORS: dict[str, object] = {}


def detect_crop(image: np.ndarray, margin: float, size: int) -> np.ndarray:
    """The best face's crop (:func:`headpose.detect.crop_face`), or :class:`Skip` (no face found).

    Full-range BlazeFace first; if it finds nothing, short-range (better on faces that fill the picture,
    e.g. renders). One detector per process, created on first use, single-threaded (the pool is the
    parallelism).
    """
    from headpose.detect import FaceDetector, crop_face

    for model in ("full", "short"):
        det = _DETECTORS.get(model)
        if det is None:
            det = _DETECTORS[model] = FaceDetector(model, threads=1, fallback=False)
        faces = det.detect(image)
        if faces:
            return crop_face(image, faces[0].box, margin, size)
    raise Skip(NO_FACE)
