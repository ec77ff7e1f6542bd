"""The canonical frontal face: a symmetric 468-point template and the Procrustes alignment to it.

Frame: image axes (x right, y down, z out of the face towards the viewer), the face frontal, i.e. a render at
yaw = pitch = roll = 0 shows it looking at the camera. The template is bilaterally symmetric about x = 0
(``MIRROR`` pairs each point with its mirror image), which fixes yaw and roll exactly; its pitch is set so
that the seed SSR-Net-MT (trained on 300W-LP, the project's label convention) reads its renders as pitch 0
(see ``derive_template`` and docs/synth.md).

``TEMPLATE`` is stored in ``_template_data.py``, made by :func:`derive_template` from MediaPipe points of
593 UTKFace photos (``../shared/data/faces``); units: distance between the outer eye corners = 1.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from headpose.geometry import rot_x, similarity

RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
NOSE_TIP, CHIN, FOREHEAD = 1, 152, 10


@lru_cache(maxsize=1)
def _stored():
    from headpose.synth._template_data import MIRROR, PITCH_OFFSET_DEG, POINTS

    pts = np.asarray(POINTS, np.float64).reshape(-1, 3)
    return pts, np.asarray(MIRROR, np.int64), float(PITCH_OFFSET_DEG)


def template() -> np.ndarray:
    """The canonical frontal template, 468×3 (pitch calibration applied)."""
    pts, _, off = _stored()
    return pts @ rot_x(math.radians(off)).T


def mirror() -> np.ndarray:
    """mirror()[i] is the point that is i's mirror image across the face's midline."""
    return _stored()[1]


def align(points: np.ndarray, weights: np.ndarray | None = None):
    """Similarity s, R, t with s·R·TEMPLATE + t ≈ points: R is the photo's head rotation (image axes)."""
    return similarity(template(), points, weights)


def derive_template(point_sets: np.ndarray, iterations: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(template 468×3, mirror permutation) from many faces' points (K×468×3, image axes).

    Generalised Procrustes (similarity) gives the mean shape; it is turned to the photos' average
    orientation, the mirror pairing is found by matching the shape with its reflection (Hungarian), and the
    shape is made exactly symmetric about x = 0. Scale: outer eye corners 1 apart; origin: mean of points.
    """
    from scipy.optimize import linear_sum_assignment

    sets = np.asarray(point_sets, np.float64)
    mean = sets[0] - sets[0].mean(0)
    for _ in range(iterations):
        aligned = []
        for p in sets:
            s, r, t = similarity(p, mean)
            aligned.append(s * p @ r.T + t)
        new = np.mean(aligned, 0)
        new -= new.mean(0)
        new /= np.linalg.norm(new[LEFT_EYE_OUTER] - new[RIGHT_EYE_OUTER])
        mean = new
    # the photos' average orientation: chordal mean of template → photo rotations
    rs = [similarity(mean, p)[1] for p in sets]
    u, _, vt = np.linalg.svd(np.sum(rs, 0))
    mean = mean @ (u @ np.diag([1, 1, np.sign(np.linalg.det(u @ vt))]) @ vt).T
    # mirror pairing, then exact symmetry
    refl = mean * np.array([-1.0, 1.0, 1.0])
    for _ in range(3):
        cost = np.linalg.norm(mean[:, None] - refl[None], axis=2)
        _, perm = linear_sum_assignment(cost)
        s, r, t = similarity(refl[perm], mean)
        refl_al = s * refl[perm] @ r.T + t
        sym = (mean + refl_al) / 2
        # turn so that the symmetry plane is x = 0: pair differences point along x
        diff = sym - sym[perm] * 1.0
        nx = np.linalg.svd(diff, full_matrices=False)[2][0]
        nx *= np.sign(nx[0])
        up = np.array([0.0, 1.0, 0.0]) - nx[1] * nx
        up /= np.linalg.norm(up)
        basis = np.vstack([nx, up, np.cross(nx, up)])
        mean = (sym - sym.mean(0)) @ basis.T
        refl = mean * np.array([-1.0, 1.0, 1.0])
    # exact: average each point with its partner's reflection
    mean = (mean + refl[perm]) / 2
    mean -= mean.mean(0)
    mean /= np.linalg.norm(mean[LEFT_EYE_OUTER] - mean[RIGHT_EYE_OUTER])
    return mean, perm
