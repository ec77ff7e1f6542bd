"""Faces followed across video frames: a stable ``track`` id per face, and optional One-Euro smoothing of its
angles.

:class:`FaceTracker` is online (one frame at a time, in order), so the local engine runs it inside
:meth:`headpose.estimator.HeadPoseEstimator.stream` and the Ray engine runs the very same code on its rows sorted
by frame: both give the same ids and the same smoothed angles.

Association is greedy by box overlap (IoU ≥ ``iou``, best pairs first); a face that matches no live track
starts a new one (ids count up from 1 per video); a track unseen for more than ``max_age`` frames ends.

Smoothing (``smooth=True``) is the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) per track and angle: a
low-pass filter whose cut-off rises with the angle's speed, so a still head stops jittering while a turning head
is followed with little lag. ``min_cutoff`` (Hz) sets the smoothing at rest, ``beta`` how fast the cut-off rises
with speed (per °/s). Time comes from the frame times (``time_s``), so a dropped frame does not distort it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

#: One-Euro defaults for head angles in degrees: at 30 frames/s they damp 2° of jitter on a still head about
#: 2.7 times and follow a head turning at 60°/s within about 2°.
MIN_CUTOFF = 0.5  # Hz
BETA = 0.03  # per °/s


class OneEuro:
    """One-Euro filter of one scalar signal sampled at irregular times (seconds)."""

    def __init__(self, min_cutoff: float = MIN_CUTOFF, beta: float = BETA, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One-Euro: min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.x = self.dx = self.t = None

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: float, t: float) -> float:
        x, t = float(x), float(t)
        if self.x is None:
            self.x, self.dx, self.t = x, 0.0, t
            return x
        dt = max(t - self.t, 1e-6)  # a repeated time barely moves the estimate
        dx = (x - self.x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        a = self._alpha(self.min_cutoff + self.beta * abs(self.dx), dt)
        self.x = a * x + (1 - a) * self.x
        self.t = max(t, self.t)
        return self.x


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (N×4, x0 y0 x1 y1) with every box of ``b`` (M×4)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclasses.dataclass
class _Track:
    id: int
    box: np.ndarray
    last: int
    filters: tuple | None


class FaceTracker:
    """Track ids (and, with ``smooth``, One-Euro-smoothed angles) for the faces of one video, frame by frame.

    ``update(poses, frame, time_s)`` takes the faces of one frame (objects with ``box``, ``yaw``, ``pitch``,
    ``roll`` and a ``track`` field, e.g. :class:`headpose.estimator.FacePose`) and returns copies with ``track``
    set and, when smoothing, the angles filtered. Frames must come in order.
    """

    def __init__(self, smooth: bool = False, min_cutoff: float = MIN_CUTOFF, beta: float = BETA, iou: float = 0.3,
                 max_age: int = 15):
        self.smooth, self.min_cutoff, self.beta = bool(smooth), float(min_cutoff), float(beta)
        self.iou, self.max_age = float(iou), int(max_age)
        self.tracks: list[_Track] = []
        self.next_id = 1

    def update(self, poses: list, frame: int, time_s: float | None = None) -> list:
        t = float(frame) / 30.0 if time_s is None else float(time_s)
        self.tracks = [tr for tr in self.tracks if frame - tr.last <= self.max_age]
        boxes = np.array([p.box for p in poses], np.float64).reshape(-1, 4)
        assigned: dict[int, _Track] = {}
        taken: set[int] = set()
        if len(poses) and self.tracks:
            overlap = iou_matrix(boxes, np.stack([tr.box for tr in self.tracks]))
            for flat in np.argsort(-overlap, axis=None):
                i, j = (int(v) for v in np.unravel_index(flat, overlap.shape))
                if overlap[i, j] < self.iou:
                    break
                if i not in assigned and j not in taken:
                    assigned[i] = self.tracks[j]
                    taken.add(j)
        out = []
        for i, p in enumerate(poses):
            tr = assigned.get(i)
            if tr is None:
                filters = tuple(OneEuro(self.min_cutoff, self.beta) for _ in range(3)) if self.smooth else None
                tr = _Track(self.next_id, boxes[i], frame, filters)
                self.next_id += 1
                self.tracks.append(tr)
            tr.box, tr.last = boxes[i], frame
            change = {"track": tr.id}
            if tr.filters is not None:
                change.update(yaw=tr.filters[0](p.yaw, t), pitch=tr.filters[1](p.pitch, t),
                              roll=tr.filters[2](p.roll, t))
            out.append(dataclasses.replace(p, **change))
        return out
