"""Angle conventions: everything becomes [yaw, pitch, roll] in degrees, the 300W-LP / AFLW2000-3D convention.

Positive yaw turns the face towards the left of the image, positive pitch tilts it up.
See ``../shared/data/README.md`` for the sources of each conversion.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from headpose.errors import HeadposeError


def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def biwi_matrix_to_ypr(m: np.ndarray) -> np.ndarray:
    """BIWI's 3×3 head rotation (``frame_*_pose.txt``) → [yaw, pitch, roll] in degrees."""
    r = np.asarray(m, dtype=np.float64).T
    roll = -math.atan2(r[1, 0], r[0, 0])
    yaw = -math.atan2(-r[2, 0], math.hypot(r[2, 1], r[2, 2]))
    pitch = math.atan2(r[2, 1], r[2, 2])
    return np.degrees([yaw, pitch, roll]).astype(np.float32)


def biwi_euler_to_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """BIWI ``db_annotations`` Euler angles (degrees) → rotation R = Rz(roll)·Ry(yaw)·Rx(pitch)."""
    p, y, r = np.radians([pitch, yaw, roll])
    return rot_z(r) @ rot_y(y) @ rot_x(p)


def biwi_bin_to_ypr(values: np.ndarray) -> np.ndarray:
    """The 6 floats of a BIWI ``.bin`` (centre x, y, z, pitch, yaw, roll) → [yaw, pitch, roll] degrees.

    The three Euler angles are *not* the project's angles: they are composed into BIWI's rotation matrix and
    converted like a ``.txt`` matrix (using them directly is off by about 10° of roll on average).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size != 6:
        raise ValueError(f"expected 6 values (x, y, z, pitch, yaw, roll), got {values.size}")
    return biwi_matrix_to_ypr(biwi_euler_to_matrix(*values[3:6]))


def read_biwi_bin(path: str | os.PathLike) -> np.ndarray:
    """Read a ``frame_NNNNN_pose.bin`` → [yaw, pitch, roll] degrees; HeadposeError if malformed."""
    raw = Path(path).read_bytes()
    if len(raw) != 24:
        raise HeadposeError(f"{path}: expected 6 float32 values (24 bytes), got {len(raw)} bytes")
    values = np.frombuffer(raw, dtype="<f4")
    if not np.isfinite(values).all():
        raise HeadposeError(f"{path}: non-finite values {values.tolist()}")
    return biwi_bin_to_ypr(values)


def read_biwi_txt(path: str | os.PathLike) -> np.ndarray:
    """Read a ``frame_NNNNN_pose.txt`` (3×3 rotation, then head centre) → [yaw, pitch, roll] degrees."""
    try:
        rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
        m = np.array([[float(v) for v in row] for row in rows[:3]])
    except (ValueError, OSError) as e:
        raise HeadposeError(f"{path}: cannot parse rotation matrix ({e})") from None
    if m.shape != (3, 3):
        raise HeadposeError(f"{path}: expected a 3×3 rotation matrix in the first three lines, got {m.shape}")
    return biwi_matrix_to_ypr(m)


def pose_para_to_ypr(pose_para: np.ndarray) -> np.ndarray:
    """300W-LP / AFLW2000 ``Pose_Para[0, :3]`` = [pitch, yaw, roll] radians → [yaw, pitch, roll] degrees."""
    p = np.asarray(pose_para, dtype=np.float64).ravel()
    if p.size < 3:
        raise ValueError(f"Pose_Para has {p.size} values, expected at least 3")
    pitch, yaw, roll = np.degrees(p[:3])
    return np.array([yaw, pitch, roll], dtype=np.float32)


def ypr_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation for [yaw, pitch, roll] (degrees) in image axes: x right, y down, z out of the face.

    R = Rx(pitch)·Ry(-yaw)·Rz(roll); its columns are the head's axes as drawn by Hopenet / FSA-Net
    ``draw_axis`` (x red, y green down, z blue out of the face): projected orthographically, the face's
    forward axis R[:, 2] points to (-sin yaw, -cos yaw·sin pitch) in the image, so positive yaw turns the face
    to the image's left and positive pitch tilts it up. Used by the renderer and the axis drawing alike.
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
