"""Drawing head pose on images: the three head axes and annotated face boxes.

Convention of Hopenet's / FSA-Net's ``draw_axis``: x axis red (towards the subject's left ear, i.e. image
right for a frontal face), y axis green (down), z axis blue (out of the face, towards the camera).
The axes are the columns of :func:`headpose.data.labels.ypr_to_matrix` projected orthographically (drop z),
the same rotation the synthetic renderer uses, so a drawing and a render of the same angles agree:
positive yaw turns the blue axis to the image's left, positive pitch turns it up.

Drawing functions work in place on a uint8 BGR image and also return it. No TensorFlow, no Keras.
"""

from __future__ import annotations

import cv2
import numpy as np

from headpose.data.labels import ypr_to_matrix

AXIS_COLORS = ((0, 0, 255), (0, 255, 0), (255, 0, 0))  # BGR: x red, y green, z blue


def axis_endpoints(yaw: float, pitch: float, roll: float, center, size: float) -> np.ndarray:
    """Image points (3×2) where the x, y and z head axes of length ``size`` end, starting at ``center``."""
    r = ypr_to_matrix(yaw, pitch, roll)
    return np.asarray(center, np.float64)[None, :] + size * r[:2, :].T


def draw_axis(image: np.ndarray, yaw: float, pitch: float, roll: float, center=None, size: float | None = None,
              thickness: int | None = None) -> np.ndarray:
    """Draw the head axes for [yaw, pitch, roll] (degrees) at ``center`` (default: the image centre).

    ``size``: axis length in pixels (default: a quarter of the shorter image side).
    """
    h, w = image.shape[:2]
    if center is None:
        center = (w / 2, h / 2)
    if size is None:
        size = min(h, w) / 4
    if thickness is None:
        thickness = max(1, round(size / 25))
    c = tuple(round(float(v)) for v in center)
    ends = axis_endpoints(yaw, pitch, roll, center, size)
    # Draw z last so the out-of-face axis stays visible on top.
    for end, color in zip(ends, AXIS_COLORS):
        cv2.line(image, c, (round(end[0]), round(end[1])), color, thickness, cv2.LINE_AA)
    return image


def draw_face(image: np.ndarray, box, yaw: float, pitch: float, roll: float, score: float | None = None,
              color=(255, 255, 255)) -> np.ndarray:
    """A face box, the head axes at its centre and the three angles printed above (or inside) it."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    bw, bh = x1 - x0, y1 - y0
    side = max(bw, bh, 1.0)
    thick = max(1, round(side / 100))
    cv2.rectangle(image, (round(x0), round(y0)), (round(x1), round(y1)), color, thick, cv2.LINE_AA)
    draw_axis(image, yaw, pitch, roll, center=((x0 + x1) / 2, (y0 + y1) / 2), size=0.5 * side,
              thickness=max(2, round(side / 40)))
    text = f"yaw {yaw:+.0f}  pitch {pitch:+.0f}  roll {roll:+.0f}"
    if score is not None:
        text += f"  ({score:.2f})"
    scale = float(np.clip(side / 250, 0.35, 1.2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    tx = round(min(max(x0, 0), max(image.shape[1] - tw, 0)))
    ty = round(y0 - 4) if y0 - th - base - 4 >= 0 else round(y0 + th + 4)
    cv2.rectangle(image, (tx, ty - th - 2), (tx + tw, ty + base), (0, 0, 0), -1)
    cv2.putText(image, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return image
