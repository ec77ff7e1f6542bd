"""Label formats: each dataset's angles → [yaw, pitch, roll] in degrees, the 300W-LP / AFLW2000-3D convention.

Positive yaw turns the face towards the left of the image, positive pitch tilts it up.
See ``../shared/data/README.md`` for the sources of each conversion. This module reads the label files and
picks the conversion; the rotation maths (the project's matrices, BIWI's Euler order and matrix conversion) is
in :mod:`headpose.geometry`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from headpose.errors import HeadposeError
from headpose.geometry import biwi_euler_to_matrix, biwi_matrix_to_ypr


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
