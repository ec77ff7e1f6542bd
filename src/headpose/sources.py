"""What ``predict`` reads: images, folders (recursive), video files, webcams and in-memory frames, as one stream
of :class:`Frame` s.

:func:`iter_frames` is the one reader behind :meth:`headpose.estimator.HeadPoseEstimator.stream`,
``headpose predict`` and the Ray engine's listing. A source is

- an image file or a video file (by extension; a file with another extension is tried as an image, then a video);
- a folder: every image, then every video below it, in name order (hidden files and ``exclude``, our own output
  folder, left out);
- a webcam: an ``int`` or a string of digits that is not an existing path;
- a BGR image as a NumPy array, or an iterable of them (a generator is fine: frames of a stream).

A single file that cannot be read is a :class:`~headpose.errors.HeadposeError` naming it. Inside a folder, an
unreadable image, a broken video and a file that is neither are reported to ``on_skip(name, reason)`` and the
rest is read; a video (in a folder or alone) that ends well before its stated length is reported there too.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from headpose.detect import as_bgr
from headpose.errors import HeadposeError
from headpose.io import IMAGE_EXTS

VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts",
              ".mts", ".m2ts", ".ogv", ".gif"}

# Skip reasons, as counted in the summary.
UNREADABLE = "unreadable image"
BROKEN = "broken video"
TRUNCATED = "video ended early"
OTHER = "not an image or video"

DEFAULT_FPS = 30.0  # frame rate assumed for a video that does not state one, and for in-memory frames


@dataclass
class Frame:
    """One image or video frame to read faces in.

    ``source``: the file's path, ``webcam:N``, ``array`` (one in-memory image) or ``frames`` (an iterable);
    ``index``: frame number within the source (0 for an image); ``kind``: ``image``, ``video``, ``webcam``
    or ``frames``; ``time_s``: the frame's time in seconds (frame / fps for a file, seconds since the start for
    a webcam, None for an image); ``fps`` and ``total`` (frame count, when the file states it) for videos.
    """

    source: str
    index: int
    image: np.ndarray
    kind: str
    time_s: float | None = None
    fps: float | None = None
    total: int | None = None

    @property
    def video(self) -> bool:
        return self.kind in ("video", "webcam", "frames")


def media_kind(path: Path) -> str:
    """``"image"``, ``"video"`` or ``"other"``, by the file's extension."""
    ext = Path(path).suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else "other"


def read_image(path: Path) -> np.ndarray | None:
    """The image as BGR uint8, or None when OpenCV cannot decode it."""
    try:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    return img if img is not None and img.size else None


def image_error(path: Path) -> str:
    """Why ``path`` gave no image, for an error message naming it: missing, a folder, not an image file by its
    extension, or an image file OpenCV cannot decode."""
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir():
        return f"{path}: a folder, not an image (HeadPoseEstimator.stream reads folders)"
    kind = media_kind(path)
    if kind == "video":
        return f"{path}: a video, not an image (HeadPoseEstimator.stream reads videos)"
    if kind == "other":
        return f"{path}: {OTHER} (by its extension, {path.suffix or 'none'})"
    return f"{path}: {UNREADABLE} (empty, truncated or not really a {path.suffix} file)"


def open_video(path: Path):
    """(capture, first frame) or None when OpenCV cannot open or decode it."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        return None
    ok, first = cap.read()
    if not ok or first is None:
        cap.release()
        return None
    return cap, first


def video_fps(cap) -> float:
    """The capture's frame rate, or :data:`DEFAULT_FPS` when it states none (or nonsense)."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    return fps if 0 < fps < 1000 else DEFAULT_FPS


def list_folder(root: Path, out: Path | None = None) -> list[Path]:
    """Every file below ``root`` in name order, hidden files and folders and ``out`` (our own output) left out."""
    root = Path(root)
    out_abs = Path(out).resolve() if out is not None else None
    files = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        if out_abs is not None and out_abs in p.resolve().parents:
            continue  # our own output inside the source folder
        files.append(p)
    return files


def folder_media(root: Path, out: Path | None = None) -> tuple[list[Path], list[Path], list[Path]]:
    """(images, videos, others) below ``root``, as a folder source reads them (images first, then videos)."""
    files = list_folder(root, out)
    kinds = {p: media_kind(p) for p in files}
    return ([p for p in files if kinds[p] == "image"], [p for p in files if kinds[p] == "video"],
            [p for p in files if kinds[p] == "other"])


def video_names(root: Path, videos: list[Path]) -> dict[Path, Path]:
    """Output name (relative to ``root``, ``.mp4``) of each video of a folder: ``a.avi`` → ``a.mp4``, but
    ``a.avi`` and ``a.mov`` side by side → ``a.avi.mp4`` and ``a.mov.mp4``."""
    stems = Counter(p.with_suffix("") for p in videos)
    names = {}
    for p in videos:
        rel = p.relative_to(root)
        names[p] = rel.with_name(rel.name + ".mp4") if stems[p.with_suffix("")] > 1 else rel.with_suffix(".mp4")
    return names


def is_webcam(source) -> bool:
    """Whether ``source`` names a webcam: an int, or digits that are not an existing path."""
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        return True
    return isinstance(source, str) and source.isdigit() and not Path(source).exists()


def is_path(source) -> bool:
    return isinstance(source, (str, os.PathLike))


def iter_frames(source, on_skip: Callable[[str, str], None] | None = None, exclude: Path | None = None,
                fps: float = DEFAULT_FPS) -> Iterator[Frame]:
    """The frames of ``source`` (see the module docstring), in order. ``fps``: the rate given to in-memory
    frames (their ``time_s`` = index / fps)."""
    skip = on_skip or (lambda name, reason: None)
    if isinstance(source, np.ndarray):
        yield Frame("array", 0, source, "image")
        return
    if is_webcam(source):
        yield from _webcam(int(source))
        return
    if not is_path(source):
        if not isinstance(source, Iterable):
            raise HeadposeError(f"cannot read faces from a {type(source).__name__}: give an image, a folder, a "
                                "video, a webcam index, a BGR array or an iterable of BGR arrays")
        for i, img in enumerate(source):
            try:
                img = as_bgr(img)
            except HeadposeError as e:
                raise HeadposeError(f"frame {i} of the frames given: {e}") from None
            yield Frame("frames", i, img, "frames", time_s=i / fps, fps=fps)
        return
    path = Path(source)
    if not path.exists():
        raise HeadposeError(f"{path}: no such file or folder (give an image, a folder, a video or a webcam index)")
    if path.is_dir():
        yield from _folder(path, skip, exclude)
    else:
        yield from _file(path, skip)


def _file(path: Path, skip) -> Iterator[Frame]:
    kind = media_kind(path)
    if kind != "video":
        img = read_image(path)
        if img is not None:
            yield Frame(str(path), 0, img, "image")
            return
        if kind == "image":
            raise HeadposeError(f"{path}: unreadable image (corrupt, truncated or not an image OpenCV can decode)")
    opened = open_video(path)
    if opened is None:
        what = "broken video (OpenCV cannot open or decode it)" if kind == "video" else \
            "neither an image nor a video OpenCV can read"
        raise HeadposeError(f"{path}: {what}")
    yield from _video(*opened, str(path), skip)


def _video(cap, first: np.ndarray, name: str, skip) -> Iterator[Frame]:
    """The frames of an opened video file; one that ends well before its stated length is reported."""
    fps = video_fps(cap)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
    n = 0
    try:
        frame = first
        while frame is not None:
            yield Frame(name, n, frame, "video", time_s=n / fps, fps=fps, total=total)
            n += 1
            ok, frame = cap.read()
            if not ok:
                frame = None
    finally:
        cap.release()
    if total and n < 0.98 * total - 1:
        skip(name, f"{TRUNCATED} (frame {n} of {total})")


def _webcam(index: int) -> Iterator[Frame]:
    cap = cv2.VideoCapture(index)
    ok, frame = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise HeadposeError(f"webcam {index}: cannot open it or read a frame")
    t0 = time.perf_counter()
    fps = video_fps(cap)
    try:
        i = 0
        while ok and frame is not None:
            yield Frame(f"webcam:{index}", i, frame, "webcam", time_s=time.perf_counter() - t0, fps=fps)
            i += 1
            ok, frame = cap.read()
    finally:
        cap.release()


def _folder(root: Path, skip, exclude: Path | None) -> Iterator[Frame]:
    images, videos, others = folder_media(root, exclude)
    for p in others:
        skip(str(p), OTHER)
    if not images and not videos:
        raise HeadposeError(f"{root}: no images or videos in this folder (or below it)")
    for p in images:
        img = read_image(p)
        if img is None:
            skip(str(p), UNREADABLE)
        else:
            yield Frame(str(p), 0, img, "image")
    for p in videos:
        opened = open_video(p)
        if opened is None:
            skip(str(p), BROKEN)
        else:
            yield from _video(*opened, str(p), skip)
