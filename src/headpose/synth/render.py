"""Render textured face meshes at known angles: ``headpose synth render``.

Input: ``IMAGE_DIR/NAME.png`` (texture) + ``OBJ_DIR/NAME.obj`` (``v``, ``vt``, ``f v/vt``). Output, as the
original BP4D script: ``OUT/NAME/NAME_<yaw>_<pitch>_<roll>.png`` and a ``.txt`` of the same name whose first
line is ``yaw pitch roll`` (degrees, project convention: ``headpose.geometry.ypr_to_matrix``) and whose
second line is the face box ``x0 y0 x1 y1`` in pixels (the projected face vertices), so a packer can crop
without a detector.

Geometry: the mesh is in image axes (x right, y down, z out of the face, towards the viewer) with the face
frontal at (0, 0, 0). It is rotated by R = ypr_to_matrix(yaw, pitch, roll) about the centre of its face
vertices and projected orthographically; the scale puts the face's bounding sphere at 0.85 of the image
height, so the face stays inside the image at every angle (the hair/neck extension may leave it).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from headpose.errors import HeadposeError
from headpose.geometry import ypr_to_matrix
from headpose.io import IMAGE_EXTS, writable_dir, write_atomic, write_image_atomic
from headpose.synth.grid import format_angle, grid_poses, random_poses
from headpose.synth.obj import Mesh, read_obj
from headpose.synth.raster import rasterize
from headpose.workers import imap_workers

FACE_FILL = 0.85
BACKGROUNDS = ("black", "blur", "photo")
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def load_texture(path: str | os.PathLike) -> np.ndarray:
    """BGR uint8 texture; HeadposeError naming the file if it does not load."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise HeadposeError(f"{path}: texture does not load (missing, empty or not an image)")
    return img


@dataclass
class PreparedMesh:
    """A mesh centred and scaled for one output size, with texture coordinates in texture pixels."""

    vertices: np.ndarray  # N×3, centred on the face, in output pixels
    faces: np.ndarray
    face_uv: np.ndarray
    uv_px: np.ndarray
    texture: np.ndarray
    face_vertices: int
    size: int
    normals: np.ndarray | None = None  # N×3 unit vertex normals (for --lighting)


def prepare(mesh: Mesh, texture: np.ndarray, size: int, fill: float = FACE_FILL) -> PreparedMesh:
    face = mesh.face_points
    centre = 0.5 * (face.min(axis=0) + face.max(axis=0))
    used = mesh.vertices[np.unique(mesh.faces)]
    height = float(np.ptp(used[:, 1]))
    if not height > 0:
        raise HeadposeError("degenerate mesh (no height)")
    scale = fill * size / height
    th, tw = texture.shape[:2]
    uv_px = np.empty_like(mesh.uv)
    uv_px[:, 0] = mesh.uv[:, 0] * (tw - 1)
    uv_px[:, 1] = (1.0 - mesh.uv[:, 1]) * (th - 1)
    return PreparedMesh((mesh.vertices - centre) * scale, mesh.faces, mesh.face_uv, uv_px, texture,
                        mesh.face_vertices, size, vertex_normals(mesh.vertices, mesh.faces))


def vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (sign arbitrary: lighting is two-sided)."""
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.where(norm > 0, norm, 1.0)


def random_light(rng: np.random.Generator, strength: float) -> tuple[np.ndarray, float, float]:
    """(direction towards the light, camera axes; ambient; diffuse) for one render.

    The light comes from anywhere in front of the face (z > 0.2), so its shading is fixed in the camera
    frame while the head turns, as in real photos; the photo's own lighting stays baked in the texture.
    """
    while True:
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        if d[2] > 0.2:
            break
    ambient = 1.0 - strength * rng.uniform(0.3, 1.0)
    return d, ambient, (1.0 - ambient) * rng.uniform(1.0, 1.3)


def project(pm: PreparedMesh, yaw: float, pitch: float, roll: float) -> tuple[np.ndarray, np.ndarray]:
    """Screen positions (N×2, pixels) and depths (N) of the vertices at a pose."""
    r = ypr_to_matrix(yaw, pitch, roll)
    p = pm.vertices @ r.T
    c = (pm.size - 1) / 2.0
    return p[:, :2] + c, p[:, 2]


def face_box(xy: np.ndarray, face_vertices: int) -> tuple[float, float, float, float]:
    f = xy[:face_vertices]
    x0, y0 = f.min(axis=0)
    x1, y1 = f.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


class Backgrounds:
    """Backgrounds for one mesh: black, its own photo blurred, or random crops of other input photos."""

    def __init__(self, kind: str, size: int, texture: np.ndarray, others: list[str], rng: np.random.Generator):
        if kind not in BACKGROUNDS:
            raise ValueError(f"unknown background {kind!r} (expected one of {', '.join(BACKGROUNDS)})")
        self.kind, self.size, self.rng = kind, size, rng
        self.black = np.zeros((size, size, 3), np.uint8)
        self.blurred = None
        self.pool: list[np.ndarray] = []
        if kind == "blur":
            small = cv2.resize(texture, (16, 16), interpolation=cv2.INTER_AREA)
            self.blurred = cv2.GaussianBlur(cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR),
                                            (0, 0), size / 32)
        elif kind == "photo":
            picks = rng.permutation(len(others))[:6] if others else []
            for i in picks:
                img = cv2.imread(others[i], cv2.IMREAD_COLOR)
                if img is not None and min(img.shape[:2]) >= 8:
                    self.pool.append(img)
            if not self.pool:  # no other photo loads: fall back to the mesh's own, flipped
                self.pool.append(texture[:, ::-1].copy())

    def get(self) -> np.ndarray:
        if self.kind == "black":
            return self.black.copy()
        if self.kind == "blur":
            return self.blurred.copy()
        img = self.pool[int(self.rng.integers(len(self.pool)))]
        h, w = img.shape[:2]
        side = int(min(h, w) * self.rng.uniform(0.3, 1.0))
        side = max(side, 4)
        y = int(self.rng.integers(0, h - side + 1))
        x = int(self.rng.integers(0, w - side + 1))
        crop = img[y : y + side, x : x + side]
        if self.rng.random() < 0.5:
            crop = crop[:, ::-1]
        return cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_LINEAR)


def colour_jitter(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """White balance and saturation of the whole render drawn at random (with ``--lighting``).

    Renders inherit the colour casts of their photos; real test sets have their own (BIWI: pink skin on
    blue-white walls). Without this a render-trained model reads such casts as pose.
    """
    gains = 1.0 + rng.uniform(-0.25, 0.25, 3) * strength
    out = img.astype(np.float32) * gains
    if rng.random() < 0.15 * strength:
        out[:] = out.mean(axis=2, keepdims=True)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render(pm: PreparedMesh, yaw: float, pitch: float, roll: float, background: np.ndarray | None = None,
           light: tuple[np.ndarray, float, float] | None = None):
    """One render: (image size×size×3 BGR uint8, face box (x0, y0, x1, y1), screen xy of the vertices).

    light: (direction, ambient, diffuse) from :func:`random_light`, or None for the texture as it is.
    """
    xy, z = project(pm, yaw, pitch, roll)
    img = np.zeros((pm.size, pm.size, 3), np.uint8) if background is None else background
    shade = None
    if light is not None and pm.normals is not None:
        d, ambient, diffuse = light
        n = pm.normals @ ypr_to_matrix(yaw, pitch, roll).T
        shade = ambient + diffuse * np.abs(n @ d)
    img, _ = rasterize(xy, z, pm.faces, pm.face_uv, pm.uv_px, pm.texture, (pm.size, pm.size), image=img,
                       shade=shade)
    return img, face_box(xy, pm.face_vertices), xy


def pose_stem(name: str, yaw: float, pitch: float, roll: float) -> str:
    return f"{name}_{format_angle(yaw)}_{format_angle(pitch)}_{format_angle(roll)}"


def write_label(path: Path, yaw: float, pitch: float, roll: float, box) -> None:
    write_atomic(path, f"{yaw:.2f} {pitch:.2f} {roll:.2f}\n" + " ".join(f"{v:.1f}" for v in box) + "\n")


def read_label(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """A render's ``.txt`` → ([yaw, pitch, roll], box [x0, y0, x1, y1] or None)."""
    lines = Path(path).read_text().split("\n")
    ypr = np.array([float(v) for v in lines[0].split()[:3]], np.float32)
    box = None
    if len(lines) > 1 and len(lines[1].split()) == 4:
        box = np.array([float(v) for v in lines[1].split()], np.float32)
    return ypr, box


# --- the folder job ----------------------------------------------------------------------------------------

_OTHERS: list[str] = []


def _init_worker(others: list[str]) -> None:
    global _OTHERS
    _OTHERS = others
    cv2.setNumThreads(1)


def _render_mesh(task) -> tuple[str, int, str | None]:
    """Render every pose of one mesh; never raises (a bad mesh comes back as an error line)."""
    name, tex_path, obj_path, poses, out, size, background, seed, lighting, colour_cast = task
    try:
        texture = load_texture(tex_path)
        mesh = read_obj(obj_path)
        if mesh.uv.size and (mesh.uv.min() < -0.5 or mesh.uv.max() > 1.5):
            raise HeadposeError(f"{obj_path}: texture coordinates far outside 0..1")
        pm = prepare(mesh, texture, size)
        rng = np.random.default_rng(seed)
        bg = Backgrounds(background, size, texture, [p for p in _OTHERS if p != str(tex_path)], rng)
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        for yaw, pitch, roll in poses:
            light = random_light(rng, lighting) if lighting > 0 else None
            img, box, _ = render(pm, yaw, pitch, roll, bg.get(), light)
            if colour_cast > 0:
                img = colour_jitter(img, rng, colour_cast)
            stem = pose_stem(name, yaw, pitch, roll)
            write_image_atomic(folder / f"{stem}.png", img, PNG_PARAMS)
            write_label(folder / f"{stem}.txt", yaw, pitch, roll, box)
        return name, len(poses), None
    except HeadposeError as e:
        return name, 0, str(e)
    except Exception as e:  # noqa: BLE001 - a broken input must not end the whole run
        return name, 0, f"{obj_path}: {type(e).__name__}: {e}"


def find_pairs(image_dir, obj_dir) -> tuple[list[tuple[str, Path, Path]], list[tuple[str, str]], list[str]]:
    """(name, texture, obj) for each OBJ with a texture; OBJs without one; every texture path."""
    image_dir, obj_dir = Path(image_dir), Path(obj_dir)
    if not image_dir.is_dir():
        raise HeadposeError(f"{image_dir}: not a folder")
    if not obj_dir.is_dir():
        raise HeadposeError(f"{obj_dir}: not a folder")
    textures: dict[str, Path] = {}
    for p in sorted(image_dir.iterdir()):
        if p.suffix.lower() in IMAGE_EXTS and p.stem not in textures:
            textures[p.stem] = p
    pairs, missing = [], []
    for p in sorted(obj_dir.glob("*.obj")):
        if p.stem in textures:
            pairs.append((p.stem, textures[p.stem], p))
        else:
            missing.append((p.stem, f"{p}: no texture {p.stem}.png in {image_dir}"))
    return pairs, missing, [str(p) for p in textures.values()]


def render_dir(image_dir, obj_dir, out, size: int = 256, yaw=None, pitch=None, roll=None, random=None,
               background: str = "black", workers: int | None = None, seed: int = 0, quiet: bool = False,
               lighting: float = 0.0, colour_cast: float | None = None) -> dict:
    """Render every NAME.obj of obj_dir with its NAME.png of image_dir; returns a summary dict.

    Poses: the product of yaw × pitch × roll (None → the original grid), or ``random`` K poses per mesh.
    Bad meshes and textures are named, skipped and counted; the summary is printed at the end.
    ``lighting`` (0..1): strength of a random directional light and colour cast per render (0: the texture
    as it is, as the original). ``colour_cast`` (0..1): the colour cast's own strength (default: ``lighting``;
    0 renders light without a cast, as the renders behind the shipped model were made).
    """
    from tqdm import tqdm

    if background not in BACKGROUNDS:
        raise HeadposeError(f"unknown background {background!r} (expected one of {', '.join(BACKGROUNDS)})")
    if not 0 <= lighting <= 1:
        raise HeadposeError(f"--lighting {lighting}: expected a strength between 0 and 1")
    colour_cast = lighting if colour_cast is None else colour_cast
    if not 0 <= colour_cast <= 1:
        raise HeadposeError(f"--colour-cast {colour_cast}: expected a strength between 0 and 1")
    if size < 16:
        raise HeadposeError(f"--size {size} is too small (at least 16)")
    pairs, skipped, all_textures = find_pairs(image_dir, obj_dir)
    if not pairs and not skipped:
        raise HeadposeError(f"{obj_dir}: no .obj meshes")
    out = writable_dir(out, f"--out {out}")
    if random is not None and int(random) < 1:
        raise HeadposeError(f"--random {random}: expected 1 or more poses per mesh")
    master = np.random.default_rng(seed)
    tasks = []
    for i, (name, tex, obj) in enumerate(pairs):
        if random:
            poses = random_poses(random, np.random.default_rng([seed, i]))
        else:
            poses = [(round(y, 2), round(p, 2), round(r, 2)) for y, p, r in grid_poses(yaw, pitch, roll)]
        tasks.append((name, str(tex), str(obj), poses, str(out), size, background, int(master.integers(2**31)),
                      float(lighting), float(colour_cast)))
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
    t0 = time.perf_counter()
    n_images, errors = 0, list(skipped)
    bar = tqdm(total=sum(len(t[3]) for t in tasks), unit="img", desc="render", disable=quiet, file=sys.stderr)
    try:
        for name, n, err in imap_workers(_render_mesh, tasks, workers, initializer=_init_worker,
                                         initargs=(all_textures,)):
            n_images += n
            if err:
                errors.append((name, err))
            bar.update(n)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    summary = {"meshes": len(pairs) + len(skipped), "rendered_meshes": len(pairs) - (len(errors) - len(skipped)),
               "images": n_images, "skipped": errors, "seconds": seconds,
               "images_per_s": n_images / seconds if seconds > 0 else 0.0}
    if errors:
        report = out / "render_skipped.txt"
        write_atomic(report, "".join(f"{e}\n" for _, e in errors))
    summary["earlier"] = max(0, sum(1 for _ in out.glob("*/*.png")) - n_images)  # renders this run did not make
    if not quiet:
        print(f"synth render: {n_images} images from {summary['rendered_meshes']} meshes in {seconds:.1f} s "
              f"({summary['images_per_s']:.0f}/s, {workers} workers) → {out}", file=sys.stderr)
        if summary["earlier"]:
            print(f"synth render: note: {out} also holds {summary['earlier']} renders of an earlier run (other poses "
                  "or meshes); `prepare folder` would pack them too: render into an empty folder to keep them "
                  "apart", file=sys.stderr)
        if errors:
            print(f"synth render: skipped {len(errors)} meshes (listed in {out / 'render_skipped.txt'}):",
                  file=sys.stderr)
            for _, e in errors[:20]:
                print(f"  {e}", file=sys.stderr)
            if len(errors) > 20:
                print(f"  ... and {len(errors) - 20} more", file=sys.stderr)
    return summary
