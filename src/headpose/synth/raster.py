"""A small z-buffered triangle rasteriser with perspective-correct, bilinear texture lookup (numba, CPU).

Screen space: pixel (row r, column c) has its centre at (x, y) = (c, r); x right, y down. Depth ``z`` is
larger nearer the viewer. Each vertex carries a homogeneous ``w``; attributes are interpolated as
``Σ bᵢ·uᵢ/wᵢ / Σ bᵢ/wᵢ`` with screen-space barycentrics bᵢ, so a perspective camera would be textured
correctly. The renderer projects orthographically (every w = 1), where this is exactly affine interpolation.
Triangles are two-sided (no culling): the z-buffer decides what is seen.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is in the [train] extra; the pure-Python path is very slow
    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


@njit(cache=True, nogil=True)
def _rasterize(xy, z, w, shade, faces, face_uv, uv, texture, image, zbuf):  # pragma: no cover - compiled
    height, width = zbuf.shape
    th, tw = texture.shape[0], texture.shape[1]
    drawn = 0
    for f in range(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        x0, y0 = xy[i0, 0], xy[i0, 1]
        x1, y1 = xy[i1, 0], xy[i1, 1]
        x2, y2 = xy[i2, 0], xy[i2, 1]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-12:
            continue
        inv_area = 1.0 / area
        cmin = max(int(np.ceil(min(x0, min(x1, x2)))), 0)
        cmax = min(int(np.floor(max(x0, max(x1, x2)))), width - 1)
        rmin = max(int(np.ceil(min(y0, min(y1, y2)))), 0)
        rmax = min(int(np.floor(max(y0, max(y1, y2)))), height - 1)
        if cmin > cmax or rmin > rmax:
            continue
        z0, z1, z2 = z[i0], z[i1], z[i2]
        l0, l1, l2 = shade[i0], shade[i1], shade[i2]
        q0, q1, q2 = 1.0 / w[i0], 1.0 / w[i1], 1.0 / w[i2]
        t0, t1, t2 = face_uv[f, 0], face_uv[f, 1], face_uv[f, 2]
        u0, v0 = uv[t0, 0] * q0, uv[t0, 1] * q0
        u1, v1 = uv[t1, 0] * q1, uv[t1, 1] * q1
        u2, v2 = uv[t2, 0] * q2, uv[t2, 1] * q2
        for r in range(rmin, rmax + 1):
            py = float(r)
            for c in range(cmin, cmax + 1):
                px = float(c)
                # barycentrics from edge functions (same sign as area inside the triangle)
                b0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) * inv_area
                b1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) * inv_area
                b2 = 1.0 - b0 - b1
                if b0 < -1e-7 or b1 < -1e-7 or b2 < -1e-7:
                    continue
                depth = b0 * z0 + b1 * z1 + b2 * z2
                if depth <= zbuf[r, c]:
                    continue
                zbuf[r, c] = depth
                q = b0 * q0 + b1 * q1 + b2 * q2
                tu = (b0 * u0 + b1 * u1 + b2 * u2) / q
                tv = (b0 * v0 + b1 * v1 + b2 * v2) / q
                # bilinear lookup, clamped to the texture
                if tu < 0.0:
                    tu = 0.0
                elif tu > tw - 1.0:
                    tu = tw - 1.0
                if tv < 0.0:
                    tv = 0.0
                elif tv > th - 1.0:
                    tv = th - 1.0
                ix = int(tu)
                iy = int(tv)
                fx = tu - ix
                fy = tv - iy
                ix1 = min(ix + 1, tw - 1)
                iy1 = min(iy + 1, th - 1)
                light = b0 * l0 + b1 * l1 + b2 * l2
                for ch in range(3):
                    top = texture[iy, ix, ch] * (1.0 - fx) + texture[iy, ix1, ch] * fx
                    bot = texture[iy1, ix, ch] * (1.0 - fx) + texture[iy1, ix1, ch] * fx
                    val = (top * (1.0 - fy) + bot * fy) * light + 0.5
                    image[r, c, ch] = np.uint8(min(max(val, 0.0), 255.0))
                drawn += 1
    return drawn


def rasterize(xy: np.ndarray, z: np.ndarray, faces: np.ndarray, face_uv: np.ndarray, uv_px: np.ndarray,
              texture: np.ndarray, size: tuple[int, int], w: np.ndarray | None = None,
              image: np.ndarray | None = None, shade: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw textured triangles; returns (image H×W×3 uint8, coverage mask H×W bool).

    xy: N×2 screen positions (pixels), z: N depths (larger = nearer), faces/face_uv: F×3 indices,
    uv_px: M×2 texture positions in texture pixels (column, row), texture: H×W×3 uint8.
    ``image`` (optional) is drawn over in place. ``shade`` (optional, N): a per-vertex factor on the texture
    colour, interpolated across each triangle (Gouraud lighting).
    """
    h, wd = size
    if image is None:
        image = np.zeros((h, wd, 3), np.uint8)
    zbuf = np.full((h, wd), -np.inf, np.float32)
    n = len(xy)
    w = np.ones(n, np.float64) if w is None else np.asarray(w, np.float64)
    shade = np.ones(n, np.float64) if shade is None else np.ascontiguousarray(shade, np.float64)
    _rasterize(np.ascontiguousarray(xy, np.float64), np.ascontiguousarray(z, np.float64), w, shade,
               np.ascontiguousarray(faces, np.int32), np.ascontiguousarray(face_uv, np.int32),
               np.ascontiguousarray(uv_px, np.float64), np.ascontiguousarray(texture, np.uint8), image, zbuf)
    return image, np.isfinite(zbuf)
