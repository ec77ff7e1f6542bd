"""Files: the image extensions every reader accepts, and the one way every output is written.

:data:`IMAGE_EXTS` is the one list of image extensions of the project: ``prepare`` (every reader that lists
images), ``synth mesh`` (photos), ``synth render`` (textures) and ``predict`` (images in a folder) all take it,
so an image one command reads, the others read too.

:func:`atomic_path` is the one atomic writer: every output (``.npz`` packs, JSON, reports, plots, checkpoints,
exported models, annotated images and videos, meshes and renders) is written under :func:`temp_path` beside its
target and renamed into place when complete, so a failed or killed job never leaves a truncated file under the
real name, and a failed write leaves no temp file either. The temp name holds the process id: two jobs writing
the same target never write the same temp file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Image files OpenCV's ``imread`` decodes (in its default build), lower case, with the dot. Anything else in a
#: folder is not an image (``predict`` then tries it as a video: see ``headpose.predict.VIDEO_EXTS``).
IMAGE_EXTS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".jp2", ".pbm", ".pgm",
              ".ppm", ".pnm", ".pxm", ".sr", ".ras", ".exr", ".hdr", ".pic", ".avif")

#: The subset written as given (annotated images); another extension is written as ``.png``.
WRITE_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def temp_path(path: str | os.PathLike) -> Path:
    """The temp name for ``path``: beside it (same folder, so the rename is atomic), hidden, with this process's
    id, ending with the target's own name (encoders such as OpenCV, Matplotlib and Keras pick the format from
    the extension)."""
    path = Path(path)
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_path(target) as tmp: write(tmp)``: the target's folder is created, the body writes
    :func:`temp_path` ``(target)``, which is renamed to ``target`` when the body ends without an exception;
    if it raises, the temp file is removed and ``target`` is left as it was (absent, or the previous version)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after the rename there is nothing left to remove


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to ``path`` atomically (:func:`atomic_path`); returns ``path`` as a Path."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return Path(path)


def write_image_atomic(path: str | os.PathLike, image, params: list[int] | tuple[int, ...] = ()) -> Path:
    """``cv2.imwrite`` atomically (:func:`atomic_path`); a :class:`~headpose.errors.HeadposeError` naming
    ``path`` if OpenCV cannot write it."""
    import cv2

    from headpose.errors import HeadposeError

    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image, list(params)):
            raise HeadposeError(f"{path}: cannot write the image")
    return Path(path)


def writable_dir(path: str | os.PathLike, what: str) -> Path:
    """The folder ``path``, created if needed, checked writable; else a :class:`~headpose.errors.HeadposeError`
    that starts with ``what`` (the flag and value, e.g. ``--out runs/x``) and says what is wrong, before any work
    is done rather than when the first file is written."""
    from headpose.errors import HeadposeError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HeadposeError(f"{what}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HeadposeError(f"{what}: cannot create this folder ({e.strerror or e})") from None
    try:  # a real file, as permissions alone do not tell (root, read-only mounts, /proc)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise HeadposeError(f"{what}: cannot write in this folder ({e.strerror or e})") from None
    return path


def writable_file(path: str | os.PathLike, what: str, example: str = "out.json") -> Path:
    """``path`` as a file to write later: not a folder, in a folder that exists or can be made and is writable;
    else a :class:`~headpose.errors.HeadposeError` starting with ``what`` (e.g. ``--json x``), before any work."""
    from headpose.errors import HeadposeError

    path = Path(path)
    if path.is_dir():
        raise HeadposeError(f"{what}: a folder; give a file name, e.g. {path / example}")
    writable_dir(path.parent, f"{what} (folder {path.parent})")
    return path
