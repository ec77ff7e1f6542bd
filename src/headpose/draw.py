"""Drawing head pose on images: the three head axes, the pose cube and annotated face boxes.

Convention of Hopenet's / FSA-Net's ``draw_axis``: x axis red (towards the subject's left ear, i.e. image
right for a frontal face), y axis green (down), z axis blue (out of the face, towards the camera).
The axes are the columns of :func:`headpose.geometry.ypr_to_matrix` projected orthographically (drop z),
the same rotation the synthetic renderer uses, so a drawing and a render of the same angles agree:
positive yaw turns the blue axis to the image's left, positive pitch turns it up.

The pose cube (Hopenet's / 6DRepNet's ``plot_pose_cube``) is built from the same rotation and projection: its
back face (red) is a square of side ``size`` in the head's x-y plane, centred on the face; its depth edges
(blue) run ``size`` along the z axis to the front face (green), whose centre is where :func:`draw_axis`'s
blue axis of the same ``size`` ends. A frontal face (0, 0, 0) shows a single square.

Drawing functions work in place on a uint8 BGR image and also return it. No TensorFlow, no Keras.
"""

from __future__ import annotations

import cv2
import numpy as np

from headpose.errors import HeadposeError
from headpose.geometry import ypr_to_matrix

AXIS_COLORS = ((0, 0, 255), (0, 255, 0), (255, 0, 0))  # BGR: x red, y green, z blue
CUBE_COLORS = ((0, 0, 255), (255, 0, 0), (0, 255, 0))  # BGR: back face red, depth edges blue, front face green
DRAW_STYLES = ("axis", "cube")

# Cube corners in head axes, in units of the edge: 0-3 the back face (z = 0, centred on the face) going round
# (-x, -y), (+x, -y), (+x, +y), (-x, +y); 4-7 the same corners of the front face, one edge out along z.
_CUBE = np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
_CUBE = np.concatenate([_CUBE, _CUBE + [0.0, 0.0, 1.0]])
_CUBE_EDGES = (
    ((0, 1), (1, 2), (2, 3), (3, 0)),  # back face
    ((0, 4), (1, 5), (2, 6), (3, 7)),  # depth edges
    ((4, 5), (5, 6), (6, 7), (7, 4)),  # front face
)


def _project(points: np.ndarray, yaw: float, pitch: float, roll: float, center, size: float) -> np.ndarray:
    """Head-frame points (N×3, units of ``size``) rotated by [yaw, pitch, roll], projected orthographically
    and placed at ``center``: image points N×2."""
    r = ypr_to_matrix(yaw, pitch, roll)
    return np.asarray(center, np.float64)[None, :] + size * (points @ r.T)[:, :2]


def axis_endpoints(yaw: float, pitch: float, roll: float, center, size: float) -> np.ndarray:
    """Image points (3×2) where the x, y and z head axes of length ``size`` end, starting at ``center``."""
    return _project(np.eye(3), yaw, pitch, roll, center, size)


def cube_points(yaw: float, pitch: float, roll: float, center, size: float) -> np.ndarray:
    """Image points (8×2) of the pose cube's corners: 0-3 the back face, centred on ``center`` and going round
    the head's (-x, -y), (+x, -y), (+x, +y), (-x, +y) corners; 4-7 the same corners of the front face, ``size``
    out along the head's z axis. Edge length ``size`` before projection."""
    return _project(_CUBE, yaw, pitch, roll, center, size)


def _placement(image: np.ndarray, center, size, thickness) -> tuple[tuple[float, float], float, int]:
    """Defaults shared by the drawings: the image centre, a quarter of the shorter side, size / 25."""
    h, w = image.shape[:2]
    if center is None:
        center = (w / 2, h / 2)
    if size is None:
        size = min(h, w) / 4
    if thickness is None:
        thickness = max(1, round(size / 25))
    return center, size, thickness


def _pt(p) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def draw_axis(image: np.ndarray, yaw: float, pitch: float, roll: float, center=None, size: float | None = None,
              thickness: int | None = None) -> np.ndarray:
    """Draw the head axes for [yaw, pitch, roll] (degrees) at ``center`` (default: the image centre).

    ``size``: axis length in pixels (default: a quarter of the shorter image side).
    """
    center, size, thickness = _placement(image, center, size, thickness)
    ends = axis_endpoints(yaw, pitch, roll, center, size)
    # Draw z last so the out-of-face axis stays visible on top.
    for end, color in zip(ends, AXIS_COLORS):
        cv2.line(image, _pt(center), _pt(end), color, thickness, cv2.LINE_AA)
    return image


def draw_cube(image: np.ndarray, yaw: float, pitch: float, roll: float, center=None, size: float | None = None,
              thickness: int | None = None) -> np.ndarray:
    """Draw the pose cube for [yaw, pitch, roll] (degrees), its back face centred at ``center`` (default: the
    image centre): back face red, depth edges blue, front face green (drawn last, on top).

    ``size``: the cube's edge in pixels (default: a quarter of the shorter image side).
    """
    center, size, thickness = _placement(image, center, size, thickness)
    pts = cube_points(yaw, pitch, roll, center, size)
    for edges, color in zip(_CUBE_EDGES, CUBE_COLORS):
        for i, j in edges:
            cv2.line(image, _pt(pts[i]), _pt(pts[j]), color, thickness, cv2.LINE_AA)
    return image


_DRAWERS = {"axis": draw_axis, "cube": draw_cube}


def draw_face(image: np.ndarray, box, yaw: float, pitch: float, roll: float, score: float | None = None,
              color=(255, 255, 255), style: str = "axis", track: int | None = None) -> np.ndarray:
    """A face box, the head pose at its centre and the three angles printed above (or inside) it.

    ``style``: "axis" (the head axes, :func:`draw_axis`) or "cube" (the pose cube, :func:`draw_cube`), both of
    size half the box's longer side; ``track``: a track id, printed as "#<track>" before the angles.
    """
    if style not in DRAW_STYLES:
        raise HeadposeError(f"unknown drawing style {style!r} (expected one of: {', '.join(DRAW_STYLES)})")
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    bw, bh = x1 - x0, y1 - y0
    side = max(bw, bh, 1.0)
    thick = max(1, round(side / 100))
    cv2.rectangle(image, (round(x0), round(y0)), (round(x1), round(y1)), color, thick, cv2.LINE_AA)
    _DRAWERS[style](image, yaw, pitch, roll, center=((x0 + x1) / 2, (y0 + y1) / 2), size=0.5 * side,
                    thickness=max(2, round(side / 40)))
    text = f"yaw {yaw:+.0f}  pitch {pitch:+.0f}  roll {roll:+.0f}"
    if track is not None:
        text = f"#{track}  {text}"
    if score is not None:
        text += f"  ({score:.2f})"
    scale = float(np.clip(side / 250, 0.35, 1.2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    tx = round(min(max(x0, 0), max(image.shape[1] - tw, 0)))
    ty = round(y0 - 4) if y0 - th - base - 4 >= 0 else round(y0 + th + 4)
    cv2.rectangle(image, (tx, ty - th - 2), (tx + tw, ty + base), (0, 0, 0), -1)
    cv2.putText(image, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return image
