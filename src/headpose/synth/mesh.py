"""Textured head meshes from ordinary face photos: ``headpose synth mesh --images DIR --out DIR``.

For each photo:

1. find the face with BlazeFace (:class:`headpose.detect.FaceDetector`; the short-range model first, as
   face photos are mostly close-ups, then the full-range one on the photo padded on all sides);
2. run MediaPipe's 468-point 3D face mesh (:mod:`headpose.synth.landmarks`) in the detector's ROI, then once
   more in the ROI of its own points;
3. fit the symmetric canonical template (:mod:`headpose.synth.canonical`) to the points (similarity
   Procrustes) and undo the photo's own head rotation: the mesh's vertices are the photo's points in the
   canonical frontal frame, so a render at (0, 0, 0) is frontal and every rendered label is absolute;
4. triangulate with one fixed Delaunay triangulation of the template's frontal (x, y);
5. extend the surface beyond the landmark hull with rings that curve back over a head proxy (an ellipsoid
   skull, and a neck below the jaw line) so renders show forehead, hair, ears and neck, falling back in
   depth, instead of a floating mask. Their texture comes from the photo around the face (behind the
   silhouette, from the silhouette);
6. write ``NAME.png`` (the photo) and ``NAME.obj`` (vertices in the canonical frame, units: outer eye
   corners 1 apart; ``vt`` into the photo; the first 468 vertices are the face, marked by a
   ``# headpose face_vertices 468`` comment).

Photos with no face, no plausible mesh, or a head turned too far for a usable texture are skipped, counted
and named in ``OUT/mesh_report.txt``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from headpose.errors import HeadposeError
from headpose.geometry import matrix_to_ypr
from headpose.io import IMAGE_EXTS, writable_dir, write_atomic, write_image_atomic
from headpose.synth.canonical import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, align, template
from headpose.synth.obj import write_obj
from headpose.workers import imap_workers

NUM_FACE = 468

# Plausibility limits for a photo's mesh.
MAX_PHOTO_YAW = 45.0  # beyond, half the face is hidden in the photo: no texture for it
MAX_PHOTO_PITCH = 40.0
MAX_FIT_RMS = 0.08  # RMS distance of the points from the fitted template, in eye-corner units
MIN_EYE_PX = 12.0  # outer eye corners at least this far apart in the photo
MIN_LANDMARK_SCORE = 0.5

# Head proxy for the extension, canonical units (outer eye corners 1 apart, ≈ 9-10 cm).
HEAD_CENTRE_Y = -0.2  # about ear level
HEAD_CENTRE_Z = -0.95
SKULL_HALF_WIDTH = 0.86
SKULL_HALF_HEIGHT = 1.30  # centre to the top of the head
NECK_HALF_WIDTH = 0.52
NECK_FRONT_Z = -0.55  # the front of the neck, behind the chin
NECK_LENGTH = 0.95  # how far below the chin the neck goes
RING_ANGLES = (22.0, 45.0, 68.0, 90.0, 115.0, 140.0)  # degrees along each arc; 90 = the silhouette
TEXTURE_PAD = 0.5  # NAME.png is the photo with this fraction of its size added on each side (mirrored, blurred)


@lru_cache(maxsize=1)
def topology() -> tuple[np.ndarray, np.ndarray]:
    """(triangles of the 468 points, their hull loop) from the template's frontal (x, y)."""
    from scipy.spatial import ConvexHull, Delaunay

    t = template()
    tri = Delaunay(t[:, :2]).simplices.astype(np.int32)
    hull = ConvexHull(t[:, :2]).vertices.astype(np.int32)  # counter-clockwise in (x, y)
    return tri, hull


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    u = np.clip((x - a) / (b - a), 0.0, 1.0)
    return u * u * (3 - 2 * u)


def extension(face: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rings of vertices beyond the face hull (canonical frame).

    Returns (vertices R×H×3, the same at most up to the silhouette — for texture lookup — , triangles
    joining the rings, vertex index of ring r position j = NUM_FACE + r·H + j).
    """
    _, hull = topology()
    p0 = face[hull]  # H×3, the hull loop
    h = len(hull)
    x0, y0, _z0 = p0[:, 0], p0[:, 1], p0[:, 2]
    d = np.stack([x0, y0 - HEAD_CENTRE_Y], 1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    # skull: along d from p0 to the ellipse x²/a² + (y − yc)²/b² = 1, back to the centre plane
    a, b = SKULL_HALF_WIDTH, SKULL_HALF_HEIGHT
    px, py = x0, y0 - HEAD_CENTRE_Y
    qa = (d[:, 0] / a) ** 2 + (d[:, 1] / b) ** 2
    qb = 2 * (px * d[:, 0] / a**2 + py * d[:, 1] / b**2)
    qc = (px / a) ** 2 + (py / b) ** 2 - 1
    reach = (-qb + np.sqrt(np.maximum(qb**2 - 4 * qa * qc, 0))) / (2 * qa)
    reach = np.maximum(reach, 0.06)
    skull = np.stack([x0 + reach * d[:, 0], y0 + reach * d[:, 1], np.full(h, HEAD_CENTRE_Z)], 1)
    # neck: below the jaw line, down and back
    chin_y = float(face[:, 1].max())
    neck = np.stack([np.clip(x0 * 0.8, -NECK_HALF_WIDTH, NECK_HALF_WIDTH),
                     np.maximum(y0, chin_y) + NECK_LENGTH * np.maximum(d[:, 1], 0.3),
                     np.full(h, NECK_FRONT_Z)], 1)
    wneck = _smoothstep(0.35, 0.8, d[:, 1])[:, None]
    rings, rings_tex = [], []
    for deg in RING_ANGLES:
        th = math.radians(deg)
        # skull: out first, then back (a bulge); neck: back first (under the chin), then down
        s_sk = np.array([math.sin(th), math.sin(th), 1 - math.cos(th)])
        s_nk = np.array([1 - math.cos(th), 1 - math.cos(th), math.sin(th)]) if deg <= 90 else \
            np.array([1.0, 1.0, 1.0 - math.cos(th) + 0.0])
        pk = (1 - wneck) * (p0 + s_sk * (skull - p0)) + wneck * (p0 + s_nk * (neck - p0))
        rings.append(pk)
        th_t = math.radians(min(deg, 90.0))
        s_sk = np.array([math.sin(th_t), math.sin(th_t), 1 - math.cos(th_t)])
        s_nk = np.array([1 - math.cos(th_t), 1 - math.cos(th_t), math.sin(th_t)])
        rings_tex.append((1 - wneck) * (p0 + s_sk * (skull - p0)) + wneck * (p0 + s_nk * (neck - p0)))
    rings = np.stack(rings)
    rings_tex = np.stack(rings_tex)
    # triangles: hull loop (face indices) → ring 0 → ring 1 ...
    prev = hull.astype(np.int64)
    tris = []
    for r in range(len(RING_ANGLES)):
        cur = NUM_FACE + r * h + np.arange(h)
        nxt_prev, nxt_cur = np.roll(prev, -1), np.roll(cur, -1)
        tris.append(np.stack([prev, nxt_prev, nxt_cur], 1))
        tris.append(np.stack([prev, nxt_cur, cur], 1))
        prev = cur
    return rings, rings_tex, np.concatenate(tris).astype(np.int32), hull


def texture_pad(image_shape) -> int:
    """Border added around the photo in the texture (pixels): room for the extension's texture."""
    return round(TEXTURE_PAD * max(image_shape[:2]))


def padded_texture(img: np.ndarray) -> np.ndarray:
    """The photo in a border of smooth colour diffused outwards from its edges (push-pull fill).

    Hair, forehead and neck beyond the photo's edge get plausible soft colour instead of the streaks that
    clamping texture coordinates to the edge would draw, or the mirrored chin a reflected border would.
    """
    pad = texture_pad(img.shape)
    if pad == 0:
        return img
    h, w = img.shape[:2]
    big = np.zeros((h + 2 * pad, w + 2 * pad, 3), np.float32)
    mask = np.zeros(big.shape[:2], np.float32)
    big[pad : pad + h, pad : pad + w] = img
    mask[pad : pad + h, pad : pad + w] = 1.0
    # push: pyramid of mask-weighted averages
    levels = [(big * mask[..., None], mask)]
    while min(levels[-1][1].shape) > 4:
        c, m = levels[-1]
        levels.append((cv2.resize(c, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
                       cv2.resize(m, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)))
    # pull: fill each level's holes from the coarser level
    c, m = levels[-1]
    fill = c / np.maximum(m, 1e-6)[..., None]
    for c, m in reversed(levels[:-1]):
        up = cv2.resize(fill, (m.shape[1], m.shape[0]), interpolation=cv2.INTER_LINEAR)
        own = c / np.maximum(m, 1e-6)[..., None]
        a = np.clip(m, 0, 1)[..., None]
        fill = own * a + up * (1 - a)
    fill = cv2.GaussianBlur(fill, (0, 0), max(h, w) / 60)
    # feather the photo's edge into the fill
    f = max(2.0, max(h, w) / 40)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = np.minimum(np.minimum(xx, w - 1 - xx), np.minimum(yy, h - 1 - yy)).astype(np.float32)
    a = np.clip((inside + 1) / f, 0, 1)[..., None]
    fill[pad : pad + h, pad : pad + w] = img * a + fill[pad : pad + h, pad : pad + w] * (1 - a)
    return np.clip(fill + 0.5, 0, 255).astype(np.uint8)


def build_mesh(points: np.ndarray, image_shape) -> dict:
    """Canonical head mesh from one photo's 468 points (image pixels, z towards the viewer).

    Returns dict(vertices V×3, uv V×2 (OBJ convention), faces F×3, photo_ypr, fit_rms); raises
    HeadposeError (without a file name) if the mesh is not plausible.
    """
    pts = np.asarray(points, np.float64)
    if pts.shape != (NUM_FACE, 3) or not np.isfinite(pts).all():
        raise HeadposeError("no usable face points")
    eye_px = float(np.linalg.norm(pts[LEFT_EYE_OUTER, :2] - pts[RIGHT_EYE_OUTER, :2]))
    if eye_px < MIN_EYE_PX:
        raise HeadposeError(f"face too small (eyes {eye_px:.0f} px apart)")
    s, r, t = align(pts)
    canon = (pts - t) @ r / s  # R⁻¹ (p − t) / s, row vectors
    rms = float(np.sqrt(((canon - template()) ** 2).sum(1).mean()))
    ypr = matrix_to_ypr(r)
    if rms > MAX_FIT_RMS:
        raise HeadposeError(f"implausible face mesh (distance from the template {rms:.3f} > {MAX_FIT_RMS})")
    if abs(ypr[0]) > MAX_PHOTO_YAW or abs(ypr[1]) > MAX_PHOTO_PITCH:
        raise HeadposeError(f"head turned too far in the photo (yaw {ypr[0]:.0f}°, pitch {ypr[1]:.0f}°)")
    tri, _ = topology()
    rings, rings_tex, ext_tris, _ = extension(canon)
    verts = np.concatenate([canon, rings.reshape(-1, 3)])
    tex_pts = np.concatenate([canon, rings_tex.reshape(-1, 3)])
    photo_xy = (s * tex_pts @ r.T + t)[:, :2]  # canonical → photo pixels
    photo_xy[:NUM_FACE] = pts[:, :2]
    hgt, wid = image_shape[:2]
    pad = texture_pad(image_shape)
    photo_xy += pad
    hgt, wid = hgt + 2 * pad, wid + 2 * pad
    uv = np.empty((len(verts), 2))
    uv[:, 0] = np.clip(photo_xy[:, 0], 0, wid - 1) / (wid - 1)
    uv[:, 1] = 1.0 - np.clip(photo_xy[:, 1], 0, hgt - 1) / (hgt - 1)
    faces = np.concatenate([tri, ext_tris])
    return {"vertices": verts, "uv": uv, "faces": faces, "photo_ypr": ypr, "fit_rms": rms}


class _Worker:
    def __init__(self):
        from headpose.detect import FaceDetector
        from headpose.synth.landmarks import FaceLandmarker

        self.short = FaceDetector("short", 0.5, threads=1)
        self.full = FaceDetector("full", 0.5, threads=1, fallback=False)
        self.landmarker = FaceLandmarker(threads=1)

    def detect(self, img: np.ndarray):
        faces = self.short.detect(img)
        if faces:
            return max(faces, key=lambda f: f.score)
        faces = self.full.detect_padded(img, max(img.shape[:2]) // 4)
        return max(faces, key=lambda f: f.score) if faces else None

    def __call__(self, path: str, out: str) -> tuple[str, str | None, dict | None]:
        name = Path(path).stem
        try:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None or min(img.shape[:2]) < 16:
                raise HeadposeError(f"{path}: image does not load")
            face = self.detect(img)
            if face is None:
                raise HeadposeError(f"{path}: no face found")
            pts, score = self.landmarker.from_box(img, face.box, face.keypoints[0], face.keypoints[1])
            if score < MIN_LANDMARK_SCORE:
                raise HeadposeError(f"{path}: no face mesh (landmark score {score:.2f})")
            try:
                m = build_mesh(pts, img.shape)
            except HeadposeError as e:
                raise HeadposeError(f"{path}: {e}") from None
            y, p, r = m["photo_ypr"]
            write_image_atomic(Path(out) / f"{name}.png", padded_texture(img))
            write_obj(Path(out) / f"{name}.obj", m["vertices"], m["uv"], m["faces"], face_vertices=NUM_FACE,
                      comment=f"headpose synth mesh from {Path(path).name}: photo pose yaw {y:.1f} pitch "
                              f"{p:.1f} roll {r:.1f}, template fit rms {m['fit_rms']:.3f}")
            return name, None, {"photo_ypr": [float(v) for v in m["photo_ypr"]], "fit_rms": m["fit_rms"]}
        except HeadposeError as e:
            return name, str(e), None
        except Exception as e:  # noqa: BLE001 - one bad photo must not end the run
            return name, f"{path}: {type(e).__name__}: {e}", None


_WORKER: _Worker | None = None


def _init():
    global _WORKER
    cv2.setNumThreads(1)
    _WORKER = _Worker()


def _one(args):
    return _WORKER(*args)


def list_images(images) -> list[Path]:
    images = Path(images)
    if images.is_file():
        return [images]
    if not images.is_dir():
        raise HeadposeError(f"{images}: no such folder")
    return sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def mesh_dir(images, out, workers: int | None = None, limit: int | None = None, quiet: bool = False) -> dict:
    """Build NAME.png + NAME.obj in ``out`` for each photo of ``images``; returns a summary dict.

    Skipped photos (no face, implausible mesh, head turned too far) are counted, named in
    ``out/mesh_report.txt`` and summarised on stderr.
    """
    from tqdm import tqdm

    paths = list_images(images)
    if limit:
        paths = paths[:limit]
    if not paths:
        raise HeadposeError(f"{images}: no images ({', '.join(IMAGE_EXTS)})")
    out = writable_dir(out, f"--out {out}")
    workers = max(1, min(workers or os.cpu_count() or 1, len(paths)))
    tasks = [(str(p), str(out)) for p in paths]
    t0 = time.perf_counter()
    made, skipped = [], []
    bar = tqdm(total=len(tasks), unit="photo", desc="mesh", disable=quiet, file=sys.stderr)
    try:
        for name, err, info in imap_workers(_one, tasks, workers, initializer=_init, chunksize=4):
            if err:
                skipped.append((name, err))
            else:
                made.append((name, info))
            bar.update(1)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    skipped.sort()
    lines = [f"synth mesh: {len(made)} meshes from {len(paths)} photos, {len(skipped)} skipped", ""]
    lines += [e for _, e in skipped]
    write_atomic(out / "mesh_report.txt", "\n".join(lines) + "\n")
    if not quiet:
        print(f"synth mesh: {len(made)} meshes from {len(paths)} photos in {seconds:.1f} s → {out}",
              file=sys.stderr)
        if skipped:
            print(f"synth mesh: skipped {len(skipped)} (listed in {out / 'mesh_report.txt'}):", file=sys.stderr)
            for _, e in skipped[:20]:
                print(f"  {e}", file=sys.stderr)
            if len(skipped) > 20:
                print(f"  ... and {len(skipped) - 20} more", file=sys.stderr)
    return {"photos": len(paths), "meshes": len(made), "skipped": skipped, "seconds": seconds,
            "made": dict(made)}
