"""Wavefront OBJ reader and writer for textured meshes: ``v``, ``vt``, ``f`` with texture indices.

Faces may be triangles, quads or larger polygons (fan-triangulated). Every problem is a one-line
``HeadposeError`` naming the file: no ``vt``, faces without texture indices, indices out of range,
non-finite numbers, a mesh without area.

A comment ``# headpose face_vertices N`` (written by ``synth mesh``) says that the first N vertices are the
face proper (the landmarks); the renderer scales and boxes the face by them and not by the hair/neck
extension. Without it, every vertex counts as face.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headpose.errors import HeadposeError
from headpose.io import write_atomic


@dataclass
class Mesh:
    vertices: np.ndarray  # (N, 3) float64
    uv: np.ndarray  # (M, 2) float64, OBJ convention: v = 0 at the bottom of the texture
    faces: np.ndarray  # (F, 3) int32 indices into vertices
    face_uv: np.ndarray  # (F, 3) int32 indices into uv
    face_vertices: int  # the first face_vertices vertices are the face (for scale and box)

    @property
    def face_points(self) -> np.ndarray:
        return self.vertices[: self.face_vertices]


def _index(token: str, n: int, what: str, path, lineno: int) -> int:
    try:
        i = int(token)
    except ValueError:
        raise HeadposeError(f"{path}:{lineno}: bad {what} index {token!r}") from None
    if i > 0:
        i -= 1
    elif i < 0:
        i += n  # relative index: -1 is the last one defined so far
    else:
        raise HeadposeError(f"{path}:{lineno}: {what} index 0 (OBJ indices start at 1)")
    if not 0 <= i < n:
        raise HeadposeError(f"{path}:{lineno}: {what} index {token} out of range (1..{n})")
    return i


def read_obj(path: str | os.PathLike) -> Mesh:
    """Read a textured OBJ; HeadposeError (naming the file) if it cannot be rendered."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise HeadposeError(f"{path}: cannot read ({e.strerror or e})") from None
    verts: list[list[float]] = []
    uvs: list[list[float]] = []
    faces: list[tuple[int, int, int]] = []
    fuv: list[tuple[int, int, int]] = []
    face_count = None
    missing_vt_line = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        tag = parts[0]
        if tag == "#":
            if len(parts) >= 4 and parts[1] == "headpose" and parts[2] == "face_vertices":
                try:
                    face_count = int(parts[3])
                except ValueError:
                    pass
            continue
        if tag == "v":
            try:
                verts.append([float(x) for x in parts[1:4]])
            except ValueError:
                raise HeadposeError(f"{path}:{lineno}: bad vertex {line.strip()!r}") from None
            if len(verts[-1]) != 3:
                raise HeadposeError(f"{path}:{lineno}: vertex needs 3 coordinates: {line.strip()!r}")
        elif tag == "vt":
            try:
                uvs.append([float(x) for x in parts[1:3]])
            except ValueError:
                raise HeadposeError(f"{path}:{lineno}: bad texture coordinate {line.strip()!r}") from None
            if len(uvs[-1]) != 2:
                raise HeadposeError(f"{path}:{lineno}: texture coordinate needs u and v: {line.strip()!r}")
        elif tag == "f":
            corners = parts[1:]
            if len(corners) < 3:
                raise HeadposeError(f"{path}:{lineno}: face with {len(corners)} corners")
            vi, ti = [], []
            for c in corners:
                sub = c.split("/")
                vi.append(_index(sub[0], len(verts), "vertex", path, lineno))
                if len(sub) < 2 or sub[1] == "":
                    missing_vt_line = missing_vt_line or lineno
                    ti.append(-1)
                else:
                    ti.append(_index(sub[1], len(uvs), "texture", path, lineno))
            for k in range(1, len(vi) - 1):  # fan: quads and polygons → triangles
                faces.append((vi[0], vi[k], vi[k + 1]))
                fuv.append((ti[0], ti[k], ti[k + 1]))
    if not verts:
        raise HeadposeError(f"{path}: no vertices (not an OBJ mesh?)")
    if not uvs:
        raise HeadposeError(f"{path}: no texture coordinates (vt): cannot texture the mesh")
    if missing_vt_line:
        raise HeadposeError(f"{path}:{missing_vt_line}: face without texture indices (f v/vt ...)")
    if not faces:
        raise HeadposeError(f"{path}: no faces (f)")
    v = np.asarray(verts, np.float64)
    t = np.asarray(uvs, np.float64)
    if not (np.isfinite(v).all() and np.isfinite(t).all()):
        raise HeadposeError(f"{path}: non-finite vertex or texture coordinates")
    f = np.asarray(faces, np.int32)
    ft = np.asarray(fuv, np.int32)
    # Drop triangles without area; a mesh with none left (or flat as a line) is degenerate.
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    extent = float(np.ptp(v[np.unique(f)], axis=0).max())
    keep = area > 1e-12 * max(extent, 1e-300) ** 2
    if extent <= 0 or not keep.any():
        raise HeadposeError(f"{path}: degenerate mesh (all {len(f)} triangles have zero area)")
    f, ft = f[keep], ft[keep]
    n_face = len(v) if face_count is None or not 3 <= face_count <= len(v) else face_count
    fp = v[:n_face]
    if np.ptp(fp[:, 0]) <= 0 or np.ptp(fp[:, 1]) <= 0:
        raise HeadposeError(f"{path}: degenerate mesh (face vertices have no extent in x or y)")
    return Mesh(v, t, f, ft, n_face)


def write_obj(path: str | os.PathLike, vertices: np.ndarray, uv: np.ndarray, faces: np.ndarray,
              face_vertices: int | None = None, comment: str | None = None) -> None:
    """Write a mesh whose vertex i has texture coordinate i (``f a/a b/b c/c``)."""
    vertices = np.asarray(vertices, np.float64)
    uv = np.asarray(uv, np.float64)
    faces = np.asarray(faces, np.int64) + 1
    lines = []
    if comment:
        lines += [f"# {c}" for c in comment.splitlines()]
    if face_vertices is not None:
        lines.append(f"# headpose face_vertices {int(face_vertices)}")
    lines += [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in vertices]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in uv]
    lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in faces]
    write_atomic(path, "\n".join(lines) + "\n")
