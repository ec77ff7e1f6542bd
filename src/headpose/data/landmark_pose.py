"""Pitch and roll from AFLW's 21 landmarks when yaw is known: the labeller of ``aflw_wild``.

A rigid 3D model of the 21 points (:data:`SHAPE`, image axes x right, y down, z out of the face; outer eye
corners about 0.94 apart) is fitted to a face's visible points under a scaled orthographic camera, with yaw held
at its label: pitch, roll, scale and shift are free (robust least squares, a few pitch starts). Labels beyond
:data:`MAX_LABEL_YAW` of yaw are left unknown (NaN): near profile, pitch and roll turn about nearly the same axis
and the fit cannot tell them apart.

:data:`SHAPE` was learnt by :func:`learn_shape` from 4,000 ``aflw_wild`` faces (their yaw labels and points,
no AFLW2000 file): started from the project's canonical MediaPipe face (:mod:`headpose.synth.canonical`) at the
points AFLW marks, it alternates fitting each face's pose and solving each point's 3D position, kept mirror
symmetric and turned back onto the starting face's frame every round, so the frame (pitch zero) is the
canonical face's. The choices — the ear lobes in the fit, no pitch offset, the 70° limit — were made on the
even-numbered half of ``../shared/data/aflw2000``; ``scripts/labeller_aflw2000.py`` measures both halves
(docs/data.md).
"""

from __future__ import annotations

import math

import numpy as np

from headpose.geometry import similarity, ypr_to_matrix

MAX_LABEL_YAW = 70.0  # beyond, pitch and roll are not labelled (NaN)
MIN_POINTS = 6  # fewer visible points: pitch and roll unknown

# The 21 AFLW points (see ../shared/data/README.md) as learnt by learn_shape; rows in AFLW's order.
SHAPE = np.array([
    [-0.5583, -0.4811, -0.1175], [-0.3866, -0.5387, 0.0094], [-0.1857, -0.5087, 0.0834],
    [0.1857, -0.5087, 0.0834], [0.3866, -0.5387, 0.0094], [0.5583, -0.4811, -0.1175],
    [-0.4697, -0.3212, -0.0995], [-0.3319, -0.3316, -0.0353], [-0.2020, -0.3202, -0.0165],
    [0.2020, -0.3202, -0.0165], [0.3319, -0.3316, -0.0353], [0.4697, -0.3212, -0.0995],
    [-0.7036, 0.1668, -0.8179], [-0.1727, 0.0680, 0.1034], [0.0000, 0.0277, 0.3356],
    [0.1727, 0.0680, 0.1034], [0.7036, 0.1668, -0.8179], [-0.2547, 0.3650, 0.0287],
    [0.0000, 0.3646, 0.1518], [0.2547, 0.3650, 0.0287], [0.0000, 0.8023, 0.0574],
])

# Each AFLW point's mirror partner (left brow outer ↔ right brow outer, ...).
MIRROR = np.array([5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 16, 15, 14, 13, 12, 19, 18, 17, 20])

# Where each AFLW point lies on the 468-point MediaPipe face (mean of these vertices): learn_shape's start.
MEDIAPIPE_POINTS = ((70, 46), (105, 52), (107, 55), (336, 285), (334, 282), (300, 276),
                    (33,), (159, 145), (133,), (362,), (386, 374), (263,),
                    (132,), (129,), (1,), (358,), (361,), (61,), (13, 14), (291,), (152,))


def visible(points: np.ndarray) -> np.ndarray:
    """Mask of the points AFLW marks as visible (both coordinates ≥ 0 and finite; missing ones are -1)."""
    p = np.asarray(points, np.float64)
    return np.isfinite(p).all(axis=1) & (p >= 0).all(axis=1)


def fit_pose(points: np.ndarray, yaw: float, shape: np.ndarray = SHAPE) -> tuple[float, float, float]:
    """(pitch, roll, rms) in degrees / pixels for 21×2 image points (-1 where not visible) at a known yaw.

    NaN pitch and roll if fewer than :data:`MIN_POINTS` points are visible. ``rms``: the fit's root mean
    square residual in pixels.
    """
    from scipy.optimize import least_squares

    p = np.asarray(points, np.float64).reshape(-1, 2)
    v = visible(p)
    if v.sum() < MIN_POINTS or not math.isfinite(yaw):
        return math.nan, math.nan, math.nan
    m, q = np.asarray(shape, np.float64)[v], p[v]

    def residual(x):
        r = ypr_to_matrix(yaw, x[0], x[1])
        return (x[2] * (m @ r.T)[:, :2] + x[3:5] - q).ravel()

    s0 = float(np.ptp(q[:, 0])) / max(float(np.ptp(m[:, 0])), 0.3)
    best = None
    for pitch0 in (0.0, -20.0, 20.0):
        x0 = [pitch0, 0.0, s0, *(q.mean(0) - s0 * m.mean(0)[:2])]
        sol = least_squares(residual, x0, loss="soft_l1", f_scale=1.0)
        if best is None or sol.cost < best.cost:
            best = sol
    rms = float(np.sqrt(np.mean(residual(best.x) ** 2)))
    pitch, roll = best.x[0], best.x[1]
    # the same rotation can come out with angles a full turn apart: bring them to (-180, 180]
    pitch, roll = (float((a + 180.0) % 360.0 - 180.0) for a in (pitch, roll))
    return pitch, roll, rms


def label(points: np.ndarray, yaw: float) -> np.ndarray:
    """[yaw, pitch, roll] for a face with AFLW's 21 points and a yaw label; pitch and roll NaN where the
    fit cannot be trusted (|yaw| > :data:`MAX_LABEL_YAW`, or too few points)."""
    if abs(yaw) > MAX_LABEL_YAW:
        return np.array([yaw, np.nan, np.nan], np.float32)
    pitch, roll, _ = fit_pose(points, yaw)
    return np.array([yaw, pitch, roll], np.float32)


def mediapipe_start() -> np.ndarray:
    """The 21 points read off the canonical MediaPipe face: :func:`learn_shape`'s starting shape."""
    from headpose.synth.canonical import template

    t = template()
    return np.array([t[list(ix)].mean(0) for ix in MEDIAPIPE_POINTS])


def learn_shape(points: np.ndarray, yaws: np.ndarray, rounds: int = 6, start: np.ndarray | None = None,
                progress: bool = False) -> np.ndarray:
    """A 21×3 shape that explains many faces' points (K×21×2, -1 where missing) at their known yaws.

    Alternates: each face's pitch, roll, scale and shift by :func:`fit_pose`; then each 3D point by linear
    least squares over every face that shows it; then mirror symmetry, and a similarity back onto ``start``
    (default :func:`mediapipe_start`) so the frame does not drift.
    """
    pts = np.asarray(points, np.float64)
    yaws = np.asarray(yaws, np.float64)
    start = mediapipe_start() if start is None else np.asarray(start, np.float64)
    vis = np.array([visible(p) for p in pts])
    shape = start.copy()
    for k in range(rounds):
        poses = []
        for p, y in zip(pts, yaws):
            pitch, roll, _ = fit_pose(p, y, shape)
            poses.append((pitch, roll))
        # each face's scale and shift for its fitted rotation (closed form), then the points
        a_rows = [[] for _ in range(21)]
        b_rows = [[] for _ in range(21)]
        for p, y, (pitch, roll), v in zip(pts, yaws, poses, vis):
            if not math.isfinite(pitch):
                continue
            r = ypr_to_matrix(y, pitch, roll)
            proj = (shape[v] @ r.T)[:, :2]
            pc, qc = proj - proj.mean(0), p[v] - p[v].mean(0)
            s = float((pc * qc).sum() / max((pc**2).sum(), 1e-12))
            t = p[v].mean(0) - s * proj.mean(0)
            for j in np.flatnonzero(v):
                a_rows[j].append(s * r[:2])
                b_rows[j].append(p[j] - t)
        new = shape.copy()
        for j in range(21):
            if a_rows[j]:
                new[j] = np.linalg.lstsq(np.concatenate(a_rows[j]), np.concatenate(b_rows[j]), rcond=None)[0]
        new = (new + new[MIRROR] * np.array([-1.0, 1.0, 1.0])) / 2
        s, r, t = similarity(new, start)
        new = s * new @ r.T + t
        if progress:
            print(f"learn_shape round {k + 1}/{rounds}: largest point move {np.abs(new - shape).max():.4f}")
        shape = new
    return shape
