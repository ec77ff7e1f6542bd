"""``aflw_wild``: AFLW in-the-wild face crops listed in ``labels.csv`` (``file``, ``yaw``, ``x1..x21``,
``y1..y21``: AFLW's 21 landmarks in crop pixels, -1 where not visible).

Yaw is AFLW's label (the project's convention). Pitch and roll are derived from the landmarks at that yaw by
:mod:`headpose.data.landmark_pose` (NaN, i.e. not trained on, beyond ±70° of yaw or with too few points).
The crop is the AFLW2000 protocol's (:mod:`headpose.data.mat`): the box of the visible landmarks widened by
``--margin`` (default 0.6, FSA-Net's) × its width left and right and × its height top and bottom. The 120×120
crops are tighter than that (the landmark box is about 1.6× smaller than the crop, against 2.2× in the
protocol), so about a quarter of the widened box lies beyond the crop. ``--fill blur`` (the default) fills it
with the crop mirrored and defocused, like the out-of-focus surroundings of a photo, rather than ``--fill black``
(a black frame no AFLW2000 or detector crop has); ``--margin 0`` keeps the crops as they are.
Groups: the rows in 15 contiguous blocks of the file's order, ``p00`` … ``p14`` (``--holdout p14`` keeps one
block of faces out; neighbouring AFLW numbers can be faces of one photo, so blocks rather than every 15th row).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from headpose.data.items import BAD_LABEL, Item, Skip, read_image
from headpose.errors import HeadposeError

LABELS = "labels.csv"
PARTS = 15
# What fills the protocol box beyond the 120×120 crop: the crop mirrored and defocused (``--fill black``: black)
FILL = "blur"
COLUMNS = ["file", "yaw", *(f"x{i}" for i in range(1, 22)), *(f"y{i}" for i in range(1, 22))]


def find(src: Path) -> list[Item]:
    """One item per row of ``labels.csv``; the row's numbers travel as the item's label text."""
    table = Path(src) / LABELS
    if not table.exists():
        raise HeadposeError(f"{table}: no such file (an aflw_wild folder holds labels.csv and crops/)")
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise HeadposeError(f"{table}: missing column(s) {', '.join(missing[:5])}"
                                f"{' ...' if len(missing) > 5 else ''}")
        rows = list(reader)
    # a short row leaves its last fields None: an empty value, which parse_label reports as a bad label
    return [Item(str(Path(src) / row["file"]), ",".join(row[c] or "" for c in COLUMNS[1:]),
                 f"p{i * PARTS // len(rows):02d}") for i, row in enumerate(rows)]


def parse_label(text: str) -> tuple[float, np.ndarray]:
    """(yaw, 21×2 points) from an item's label text; Skip if malformed."""
    try:
        v = np.array([float(x) for x in text.split(",")], np.float64)
    except ValueError:
        raise Skip(BAD_LABEL, f"not numbers: {text[:60]!r}") from None
    if v.size != 43 or not math.isfinite(v[0]) or abs(v[0]) > 180:
        raise Skip(BAD_LABEL, f"expected yaw and 42 coordinates, got {v.size} values (yaw {v[0] if v.size else None})")
    return float(v[0]), np.stack([v[1:22], v[22:43]], axis=1)


def load(item: Item, size: int, margin: float | None, fill: str = FILL) -> tuple[np.ndarray, np.ndarray]:
    from headpose.data.landmark_pose import label, visible
    from headpose.data.mat import DEFAULT_MARGIN
    from headpose.detect import resize_square

    yaw, points = parse_label(item.label)
    image = read_image(item.image)
    margin = DEFAULT_MARGIN if margin is None else float(margin)
    v = visible(points)
    if margin > 0 and v.sum() >= 2:
        image = protocol_crop(image, points[v], margin, fill)
    return resize_square(image, size), label(points, yaw)


def protocol_crop(image: np.ndarray, points: np.ndarray, margin: float, fill: str = FILL) -> np.ndarray:
    """The landmark box of ``points`` (K×2 pixels) widened by ``margin`` × its width / height on each side,
    padded with ``fill`` where it leaves ``image`` (:func:`headpose.detect.crop_padded`: the face keeps the
    protocol's scale)."""
    from headpose.detect import crop_padded

    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    w, h = x1 - x0, y1 - y0
    box = (round(x0 - margin * w), round(y0 - margin * h), round(x1 + margin * w), round(y1 + margin * h))
    patch = crop_padded(image, box, fill)
    return image if patch is None else patch
