"""Unlabelled face photos (e.g. ``../shared/data/faces``, UTKFace): every image in ``--src`` (recursively), the
face found with BlazeFace and cropped as the estimator crops it (:func:`headpose.detect.crop_face`; margin 0.4
unless given, as every detector-crop reader: the shipped models read crops at margin 0.3, so pass
``--margin 0.3``). The pose is packed as NaN (unknown): ``headpose data label`` fills it with one of our models
(pseudo-labels for distilling a smaller model, or for reading our own model's answers on new faces).
Group = the first sub-folder under ``--src`` (images directly in ``--src`` form one group).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headpose.data.items import Item, detect_crop, find_images, read_image

UNKNOWN = np.full(3, np.nan, np.float32)


def find(src: Path) -> list[Item]:
    items = []
    for img in find_images(src):
        rel = img.relative_to(src).parts
        items.append(Item(str(img), None, rel[0] if len(rel) > 1 else ""))
    return items


def load(item: Item, size: int, margin: float | None) -> tuple[np.ndarray, np.ndarray]:
    from headpose.detect import DEFAULT_MARGIN

    image = read_image(item.image)
    return detect_crop(image, DEFAULT_MARGIN if margin is None else margin, size), UNKNOWN.copy()
