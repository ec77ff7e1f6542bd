"""Rotation maths, in one place: the project's [yaw, pitch, roll] convention, its matrices and their fits.

Angles are degrees, [yaw, pitch, roll], the 300W-LP / AFLW2000-3D convention; matrices act on column vectors in
image axes: x right, y down, z out of the face (towards the camera). Positive yaw turns the face towards the
image's left, positive pitch tilts it up, positive roll swings the chin to the image's left. The renderer, the
axis and cube drawings, the landmark fits, the augmentation and the label readers all take their rotations here.

In SciPy's terms :func:`ypr_to_matrix` is ``Rotation.from_euler("XYZ", [pitch, -yaw, roll], degrees=True)``
(intrinsic X-Y-Z) and :func:`matrix_to_ypr` is its ``as_euler("XYZ")`` (equal over a 15° grid of all three
angles, up to ±180° written either way; at |yaw| = 90° both return roll = 0); BIWI's
:func:`biwi_euler_to_matrix` is ``from_euler("ZYX", [roll, yaw, pitch])``. ``tests/test_geometry.py`` checks
these equalities. The functions here are nevertheless plain NumPy on purpose: they are called one face at a time,
in hot loops (the least-squares residual of :func:`headpose.data.landmark_pose.fit_pose`, each render, each
augmented crop), where building a ``Rotation`` costs about 3× the NumPy product for ``ypr_to_matrix`` and about
20× for ``matrix_to_ypr`` (whose SciPy form also warns at gimbal lock and must be silenced); and the explicit
formulas are what the data README's conversions and ``scripts/mutants.py`` point at.
"""

from __future__ import annotations

import math

import numpy as np

# A mirror image (left ↔ right) negates yaw and roll and keeps pitch.
_MIRROR_SIGNS = (-1.0, 1.0, -1.0)


def rot_x(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about x (right-handed)."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about y (right-handed)."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about z (right-handed)."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def ypr_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation for [yaw, pitch, roll] (degrees) in image axes: x right, y down, z out of the face.

    R = Rx(pitch)·Ry(-yaw)·Rz(roll); its columns are the head's axes as drawn by Hopenet / FSA-Net
    ``draw_axis`` (x red, y green down, z blue out of the face): projected orthographically, the face's
    forward axis R[:, 2] points to (-sin yaw, -cos yaw·sin pitch) in the image, so positive yaw turns the face
    to the image's left and positive pitch tilts it up. Used by the renderer and the drawings alike.
    """
    y, p, r = np.radians([yaw, pitch, roll])
    return rot_x(p) @ rot_y(-y) @ rot_z(r)


def matrix_to_ypr(r: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ypr_to_matrix`: R = Rx(pitch)·Ry(−yaw)·Rz(roll) → degrees.

    At yaw = ±90° pitch and roll turn about the same axis; only their difference (or sum) is defined there,
    and this returns roll = 0.
    """
    r = np.asarray(r, np.float64)
    sa = float(np.clip(r[0, 2], -1.0, 1.0))
    a = math.asin(sa)  # a = −yaw
    if abs(sa) < 1 - 1e-9:
        roll = math.atan2(-r[0, 1], r[0, 0])
        pitch = math.atan2(-r[1, 2], r[2, 2])
    else:
        roll = 0.0
        pitch = math.atan2(r[2, 1], r[1, 1])
    return np.degrees([-a, pitch, roll])


def rotate_in_plane(ypr, angle: float) -> np.ndarray:
    """The pose of a face whose image is turned by ``angle`` degrees counter-clockwise (as
    ``cv2.getRotationMatrix2D(c, angle, s)`` turns it): the head turns about the camera axis, which changes
    roll by −angle for a frontal face and mixes all three angles otherwise."""
    return matrix_to_ypr(rot_z(-math.radians(angle)) @ ypr_to_matrix(*ypr))


def flip_ypr(ypr) -> np.ndarray:
    """The pose seen in a mirror image (left ↔ right): yaw and roll negated, pitch kept.

    ``ypr``: one [yaw, pitch, roll] or an array of them (…×3); floats keep their dtype, NaN stays NaN.
    """
    a = np.asarray(ypr)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    if a.shape[-1:] != (3,):
        raise ValueError(f"expected [yaw, pitch, roll] in the last axis, got shape {a.shape}")
    return a * np.array(_MIRROR_SIGNS, a.dtype)


def geodesic_deg(r1: np.ndarray, r2: np.ndarray) -> float:
    """Angle of the rotation between two rotation matrices, degrees."""
    c = (np.trace(np.asarray(r1).T @ np.asarray(r2)) - 1) / 2
    return math.degrees(math.acos(float(np.clip(c, -1.0, 1.0))))


def biwi_euler_to_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """BIWI ``db_annotations`` Euler angles (degrees) → rotation R = Rz(roll)·Ry(yaw)·Rx(pitch)."""
    p, y, r = np.radians([pitch, yaw, roll])
    return rot_z(r) @ rot_y(y) @ rot_x(p)


def biwi_matrix_to_ypr(m: np.ndarray) -> np.ndarray:
    """BIWI's 3×3 head rotation (``frame_*_pose.txt``) → [yaw, pitch, roll] in degrees (float32).

    BIWI's camera frame is the image frame turned 180° about z, so for a proper rotation this equals
    ``matrix_to_ypr(D @ m @ D)`` with D = diag(−1, −1, 1); the formula below is the data README's.
    """
    r = np.asarray(m, dtype=np.float64).T
    roll = -math.atan2(r[1, 0], r[0, 0])
    yaw = -math.atan2(-r[2, 0], math.hypot(r[2, 1], r[2, 2]))
    pitch = math.atan2(r[2, 1], r[2, 2])
    return np.degrees([yaw, pitch, roll]).astype(np.float32)


def similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None):
    """Least-squares s, R, t with s·R·src + t ≈ dst (Umeyama / Kabsch), points as rows, R a proper rotation."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    ms, md = w @ src, w @ dst
    a, b = src - ms, dst - md
    cov = (b * w[:, None]).T @ a
    u, sv, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    dm = np.diag([1.0, 1.0, d])
    r = u @ dm @ vt
    var = float((w * (a**2).sum(1)).sum())
    s = float((sv * np.diag(dm)).sum() / var) if var > 0 else 1.0
    t = md - s * r @ ms
    return s, r, t


def ortho_pose(model: np.ndarray, image_xy: np.ndarray):
    """Orthographic Procrustes: s, R, t with s·(R·model)[:2] + t ≈ image_xy (least squares, R a rotation).

    Solves the affine 2×3 camera, then takes the nearest scaled pair of orthonormal rows; the third row of R
    is their cross product. Exact for noiseless orthographic projections.
    """
    m = np.asarray(model, np.float64)
    p = np.asarray(image_xy, np.float64)
    mc, pc = m - m.mean(0), p - p.mean(0)
    a, *_ = np.linalg.lstsq(mc, pc, rcond=None)  # 3×2: pc ≈ mc @ a
    a = a.T  # 2×3 = s·R[:2]
    u, sv, vt = np.linalg.svd(a, full_matrices=False)
    rows = u @ vt  # nearest matrix with orthonormal rows
    s = float(sv.mean())
    r = np.vstack([rows, np.cross(rows[0], rows[1])])
    t = p.mean(0) - s * (r @ m.mean(0))[:2]
    return s, r, t
