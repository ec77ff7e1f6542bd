"""The packed dataset format shared with FSA-Net and the original project.

Keys: ``image`` uint8 N×S×S×3 (BGR), ``pose`` float32 N×3 [yaw, pitch, roll] in degrees, ``img_size`` (S).
NaN in ``pose`` marks an angle that is not known (``aflw_wild``'s pitch and roll near profile): training leaves
it out of the loss and evaluation out of the score.
Writes are atomic (:func:`headpose.io.atomic_path`); reads validate and raise ``HeadposeError`` naming the file.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from headpose.errors import HeadposeError
from headpose.io import atomic_path

ANGLE_LIMIT = 99.0  # the original drops samples with any |angle| > 99° (V = 99 is the network's range)


def save_npz(path: str | os.PathLike, image: np.ndarray, pose: np.ndarray, compress: bool = False, **extra) -> Path:
    """Write a dataset atomically: a killed job never leaves a truncated file at ``path``."""
    path = Path(path)
    image = np.asarray(image)
    pose = np.asarray(pose, dtype=np.float32)
    if image.ndim != 4 or image.shape[1] != image.shape[2] or image.shape[3] not in (1, 3):
        raise HeadposeError(f"{path}: images must be N×S×S×3 (or ×1), got shape {image.shape}")
    if pose.shape != (image.shape[0], 3):
        raise HeadposeError(f"{path}: pose must be N×3 with N={image.shape[0]}, got shape {pose.shape}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        (np.savez_compressed if compress else np.savez)(
            f, image=image.astype(np.uint8), pose=pose, img_size=np.int64(image.shape[1]), **extra
        )
    return path


def load_npz(path: str | os.PathLike, mmap: bool = True,
             unlabelled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate a dataset; returns (image uint8 N×S×S×C, pose float32 N×3).

    With ``mmap`` the images of an uncompressed ``.npz`` are memory-mapped, so a large set is not read into
    memory at once. ``unlabelled``: accept poses with no known angle (``prepare faces``, before ``data label``).
    """
    path = Path(path)
    if not path.exists():
        raise HeadposeError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise HeadposeError(f"{path}: not an .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            for key in ("image", "pose"):
                if key not in keys:
                    raise HeadposeError(f"{path}: no '{key}' array (has: {', '.join(sorted(keys)) or 'nothing'})")
            pose = np.asarray(z["pose"], dtype=np.float32)
            image = _mmap_member(path, "image.npy") if mmap else None
            if image is None:
                image = z["image"]
    except HeadposeError:
        raise
    except Exception as e:  # corrupt zip member, pickled object arrays, ...
        raise HeadposeError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if image.ndim != 4 or image.shape[1] != image.shape[2] or image.shape[3] not in (1, 3):
        raise HeadposeError(f"{path}: 'image' must be N×S×S×3, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise HeadposeError(f"{path}: 'image' must be uint8, got {image.dtype}")
    if pose.ndim != 2 or pose.shape[1] != 3:
        raise HeadposeError(f"{path}: 'pose' must be N×3 [yaw, pitch, roll], got shape {pose.shape}")
    if pose.shape[0] != image.shape[0]:
        raise HeadposeError(f"{path}: {image.shape[0]} images but {pose.shape[0]} poses")
    bad = np.isinf(pose).any(axis=1) | (np.isnan(pose).all(axis=1) & (not unlabelled))
    if bad.any():
        first = int(np.argmax(bad))
        raise HeadposeError(f"{path}: {int(bad.sum())} poses are infinite or have no known angle "
                            f"(first at index {first}); NaN marks an unknown angle, at most two per pose "
                            "(an unlabelled set from `prepare faces` needs `headpose data label` first)")
    return image, pose


def load_groups(path: str | os.PathLike) -> np.ndarray | None:
    """The ``group`` array of a set (the sequence or identity of each row, as ``prepare`` writes it), or None
    when the set has none. Row-selecting tools carry it over, so a subset can still be split by group."""
    with np.load(path, allow_pickle=False) as z:
        return np.asarray(z["group"]) if "group" in z.files else None


def group_rows(groups: np.ndarray | None, idx=slice(None)) -> dict:
    """``group=groups[idx]`` for :func:`save_npz`, or nothing when the set had no groups."""
    return {} if groups is None else {"group": groups[idx]}


def _mmap_member(path: Path, member: str) -> np.ndarray | None:
    """Memory-map an uncompressed array inside an ``.npz``; None if it is compressed."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with zf.open(info) as f:  # one pass over the bytes for their CRC: a memory map alone would not check it
            while f.read(1 << 24):
                pass  # zipfile raises BadZipFile at the end on a CRC mismatch
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            header_len = f.tell()
    # Local file header: 30 bytes + name + extra field, then the member's data.
    with open(path, "rb") as raw:
        raw.seek(info.header_offset + 26)
        n_name, n_extra = np.frombuffer(raw.read(4), dtype="<u2")
    offset = info.header_offset + 30 + int(n_name) + int(n_extra) + header_len
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


def angle_filter(pose: np.ndarray, limit: float = ANGLE_LIMIT) -> np.ndarray:
    """Boolean mask of samples whose known angles are all within ±limit (the original's rule) and that have
    at least one known angle. An unknown angle is NaN (e.g. pitch and roll of ``aflw_wild`` faces near
    profile): it is neither trained on nor scored."""
    pose = np.asarray(pose)
    known = ~np.isnan(pose)
    return (np.where(known, np.abs(pose), 0.0) <= limit).all(axis=1) & known.any(axis=1)


def nan_mae(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Mean absolute error per angle (3 values) over the samples where that angle is known (not NaN); NaN for
    an angle known nowhere."""
    err = np.abs(np.asarray(pred, np.float64) - np.asarray(true, np.float64))
    known = ~np.isnan(err)
    n = known.sum(axis=0)
    total = np.where(known, err, 0.0).sum(axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def halves(path: str | os.PathLike, out_a: str | os.PathLike | None = None,
           out_b: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Split a set into its even and odd rows (``NAME_a.npz``, ``NAME_b.npz`` by default): two fixed halves,
    one to choose checkpoints and settings on, both to report."""
    path = Path(path)
    image, pose = load_npz(path, mmap=False, unlabelled=True)  # an unlabelled set splits as well
    base = path.with_suffix("")
    outs = (Path(out_a) if out_a else base.with_name(f"{base.name}_a.npz"),
            Path(out_b) if out_b else base.with_name(f"{base.name}_b.npz"))
    groups = load_groups(path)
    for k, out in enumerate(outs):
        save_npz(out, image[k::2], pose[k::2], **group_rows(groups, slice(k, None, 2)))
        print(f"{out}: {len(pose[k::2])} of {len(pose)} rows ({'even' if k == 0 else 'odd'})")
    return outs


def subset(path: str | os.PathLike, out: str | os.PathLike, yaw: tuple[float, float] | None = None,
           n: int | None = None) -> Path:
    """Write the rows of ``path`` whose |yaw| lies in ``yaw`` = (lo, hi) (inclusive), then, with ``n``, ``n``
    of them evenly spaced (a fixed, reproducible sample); returns ``out``."""
    image, pose = load_npz(path, unlabelled=True)  # rows of an unlabelled set too (an unknown yaw fails --yaw)
    keep = np.arange(len(pose))
    if yaw is not None:
        lo, hi = yaw
        if not 0 <= lo <= hi:
            raise HeadposeError(f"--yaw {lo:g},{hi:g}: expected LO,HI with 0 <= LO <= HI (degrees of |yaw|)")
        keep = keep[(np.abs(pose[:, 0]) >= lo) & (np.abs(pose[:, 0]) <= hi)]
    if n is not None and n < len(keep):
        keep = keep[np.linspace(0, len(keep) - 1, n).astype(int)]
    if not len(keep):
        raise HeadposeError(f"{path}: no rows left for --yaw {yaw}" + (f" --n {n}" if n is not None else ""))
    save_npz(out, np.asarray(image[keep]), pose[keep], **group_rows(load_groups(path), keep))
    print(f"{out}: {len(keep)} of {len(pose)} rows")
    return Path(out)


def concat(paths: list, out: str | os.PathLike) -> Path:
    """Write the rows of several sets, in order, as one set (same crop size required)."""
    parts = [load_npz(p) for p in paths]
    sizes = {x.shape[1:] for x, _ in parts}
    if len(sizes) != 1:
        raise HeadposeError(f"{out}: the sets differ in crop shape ({', '.join(map(str, sorted(sizes)))})")
    groups = [load_groups(p) for p in paths]
    extra = {"group": np.concatenate(groups)} if all(g is not None for g in groups) else {}
    save_npz(out, np.concatenate([np.asarray(x) for x, _ in parts]), np.concatenate([y for _, y in parts]), **extra)
    print(f"{out}: {sum(len(y) for _, y in parts)} rows from {len(parts)} sets")
    return Path(out)
