"""``headpose data show X.npz --out sheet.png``: a contact sheet of crops with their pose axes, to check a pack
by eye.

``n`` random crops (reproducible with ``seed``), each enlarged to :data:`TILE` px with the axes of its label
drawn (:func:`headpose.draw.draw_axis`: x red, y green, z blue out of the face) and the three angles
printed; a crop with an unknown angle (NaN, e.g. ``aflw_wild`` beyond ±70° of yaw) gets "?" and no axes. The
sheet has ``ceil(sqrt(n))`` columns: it is ``rows·TILE`` × ``cols·TILE`` px.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from headpose.data.npz import load_npz
from headpose.draw import draw_axis
from headpose.errors import HeadposeError

TILE = 128


def sheet_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of the sheet for ``n`` crops."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols


def contact_sheet(images: np.ndarray, poses: np.ndarray) -> np.ndarray:
    rows, cols = sheet_shape(len(images))
    sheet = np.zeros((rows * TILE, cols * TILE, 3), np.uint8)
    for k, (img, (yaw, pitch, roll)) in enumerate(zip(images, poses)):
        tile = np.asarray(img)
        if tile.shape[-1] == 1:
            tile = cv2.cvtColor(tile, cv2.COLOR_GRAY2BGR)
        tile = cv2.resize(tile, (TILE, TILE), interpolation=cv2.INTER_LINEAR)
        if np.isfinite([yaw, pitch, roll]).all():  # a pack's unknown angles (NaN) get no axes, only a "?"
            draw_axis(tile, float(yaw), float(pitch), float(roll), size=TILE * 0.35, thickness=2)
        for j, (name, angle) in enumerate(zip("ypr", (yaw, pitch, roll))):
            text = f"{name} {angle:+.0f}" if np.isfinite(angle) else f"{name} ?"
            org = (3, 12 + 12 * j)
            cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(k, cols)
        sheet[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = tile
    return sheet


def show(npz, out_png, n: int = 64, seed: int = 0) -> Path:
    """Write the contact sheet of ``n`` random crops of ``npz`` to ``out_png``; returns its path."""
    images, poses = load_npz(npz, unlabelled=True)  # crops to look at before labelling them too
    if len(images) == 0:
        raise HeadposeError(f"{npz}: no samples to show")
    if n < 1:
        raise HeadposeError(f"--n {n}: must be at least 1")
    idx = np.sort(np.random.default_rng(seed).choice(len(images), size=min(n, len(images)), replace=False))
    sheet = contact_sheet(np.asarray(images[idx]), poses[idx])
    out = Path(out_png)
    if out.suffix.lower() != ".png":
        raise HeadposeError(f"{out}: the contact sheet is written as PNG (name it .png)")
    from headpose.io import write_image_atomic

    write_image_atomic(out, sheet)
    print(f"{out}: {len(idx)} of {len(images)} crops, {sheet.shape[1]}×{sheet.shape[0]} px")
    return out
