"""Pose lists for the renderer: the original grid, ``start:stop:step`` / comma-list parsing, random poses."""

from __future__ import annotations

import itertools
import math

import numpy as np

# The original BP4D rendering grid: 19 yaws × 5 pitches × 5 rolls = 475 poses per mesh.
DEFAULT_YAW = [float(v) for v in range(-90, 91, 10)]
DEFAULT_PITCH = [-45.0, -30.0, 0.0, 30.0, 45.0]
DEFAULT_ROLL = [-45.0, -30.0, 0.0, 30.0, 45.0]

# --random K: uniform in ±these (degrees).
RANDOM_RANGE = (90.0, 60.0, 45.0)


def parse_angles(text: str) -> list[float]:
    """``start:stop:step`` (stop inclusive) or ``a,b,c`` → list of angles in degrees; ValueError if bad."""
    s = str(text).strip()
    if not s:
        raise ValueError("empty angle list")
    try:
        if ":" in s:
            parts = s.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, step = (float(p) for p in parts)
        else:
            values = [float(p) for p in s.split(",") if p.strip() != ""]
            if not values:
                raise ValueError
            if not all(math.isfinite(v) for v in values):
                raise ValueError
            return values
    except ValueError:
        raise ValueError(f"bad angle list {text!r}: expected start:stop:step (stop inclusive) or a,b,c") from None
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise ValueError(f"bad angle list {text!r}: non-finite value")
    if step == 0:
        raise ValueError(f"bad angle list {text!r}: step is 0")
    if (stop - start) * step < 0:
        raise ValueError(f"bad angle list {text!r}: step {step:g} never reaches {stop:g} from {start:g}")
    n = math.floor((stop - start) / step + 1e-9) + 1
    if n > 100000:
        raise ValueError(f"bad angle list {text!r}: {n} values")
    return [round(start + i * step, 6) for i in range(n)]


def grid_poses(yaw=None, pitch=None, roll=None) -> list[tuple[float, float, float]]:
    """Every (yaw, pitch, roll) of the product of the three lists (None → the original grid)."""
    yaw = DEFAULT_YAW if yaw is None else list(yaw)
    pitch = DEFAULT_PITCH if pitch is None else list(pitch)
    roll = DEFAULT_ROLL if roll is None else list(roll)
    return [(float(y), float(p), float(r)) for y, p, r in itertools.product(yaw, pitch, roll)]


def random_poses(k: int, rng: np.random.Generator, ranges=RANDOM_RANGE) -> list[tuple[float, float, float]]:
    """K poses uniform in ±ranges (yaw, pitch, roll), rounded to 0.01° so file names and labels agree."""
    lim = np.asarray(ranges, np.float64)
    a = np.round(rng.uniform(-lim, lim, size=(int(k), 3)), 2)
    return [tuple(float(v) for v in row) for row in a]


def format_angle(a: float) -> str:
    """Angle for a file name: ``30``, ``-45``, ``12.34``."""
    a = round(float(a), 2)
    if a == int(a):
        return str(int(a))
    return f"{a:.2f}".rstrip("0").rstrip(".")
