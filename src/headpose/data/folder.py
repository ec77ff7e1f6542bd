"""Rendered or user data: images with a ``.txt`` of the same stem whose first line is ``yaw pitch roll``
(degrees, the project's convention; what the original BP4D renderer writes).

The face is found with BlazeFace and cropped with :func:`headpose.detect.crop_face` (margin 0.4 unless given).
Group = identity = the first sub-folder under ``--src`` (images directly in ``--src`` form one group), so
``--split`` keeps every render of one person on one side.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from headpose.data.items import BAD_LABEL, NO_LABEL, Item, Skip, detect_crop, find_images, read_image


def find(src: Path) -> list[Item]:
    items = []
    for img in find_images(src):
        txt = img.with_suffix(".txt")
        rel = img.relative_to(src).parts
        items.append(Item(str(img), str(txt) if txt.exists() else None, rel[0] if len(rel) > 1 else ""))
    return items


def read_label(path: str) -> np.ndarray:
    """[yaw, pitch, roll] from the first line of a label file; Skip unless it is exactly 3 finite numbers."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        raise Skip(BAD_LABEL, str(e)) from None
    first = text.strip().splitlines()[0] if text.strip() else ""
    fields = first.replace(",", " ").split()
    if len(fields) != 3:
        raise Skip(BAD_LABEL, f"first line has {len(fields)} values, expected 3 (yaw pitch roll)")
    try:
        values = [float(v) for v in fields]
    except ValueError:
        raise Skip(BAD_LABEL, f"not numbers: {first.strip()[:60]!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise Skip(BAD_LABEL, f"non-finite values {values}")
    return np.array(values, np.float32)


def load(item: Item, size: int, margin: float | None) -> tuple[np.ndarray, np.ndarray]:
    from headpose.detect import DEFAULT_MARGIN

    if item.label is None:
        image = Path(item.image)
        misnamed = image.with_name(image.name + ".txt")
        hint = f" ({misnamed.name} is there: the label drops the image's extension)" if misnamed.exists() else ""
        raise Skip(NO_LABEL, f"no {image.with_suffix('.txt').name} beside it{hint}")
    pose = read_label(item.label)
    image = read_image(item.image)
    return detect_crop(image, DEFAULT_MARGIN if margin is None else margin, size), pose
