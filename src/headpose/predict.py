"""``headpose predict``: pose of every face in an image, a folder, a video or a webcam, written as annotated
files and a JSON Lines report.

A thin consumer of :meth:`headpose.estimator.HeadPoseEstimator.stream` (which reads the source through
:mod:`headpose.sources` and tracks the faces of videos): this module adds the outputs (:mod:`headpose.outputs`),
progress bars, the window of ``--show`` and the summary. Unreadable images, broken videos and files that are
neither are named on stderr, skipped and counted in the summary.

The API lives in :mod:`headpose.estimator` (``HeadPoseEstimator``, ``PoseResult``, ``FacePose``); the names
below that were defined here before the split are imported back for code that still imports them from here.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import cv2

from headpose.demo import demo, demo_image, demo_photo  # noqa: F401  (older import path)
from headpose.errors import HeadposeError
from headpose.estimator import (  # noqa: F401  (older import path)
    DEFAULT_MODEL,
    FacePose,
    HeadPoseEstimator,
    PoseResult,
    default_model,
    model_card,
)
from headpose.io import IMAGE_EXTS, writable_dir, writable_file
from headpose.outputs import Outputs, annotate, format_summary, report_rows, write_image  # noqa: F401
from headpose.sources import (  # noqa: F401  (older import path)
    BROKEN,
    OTHER,
    TRUNCATED,
    UNREADABLE,
    VIDEO_EXTS,
    folder_media,
    is_webcam,
    list_folder,
    media_kind,
    open_video,
    read_image,
    video_names,
)


def _has_gui() -> bool:
    """Whether this OpenCV build has a HighGUI backend (opencv-python-headless has none)."""
    import re

    m = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return not (m and m.group(1).upper() == "NONE")


def _check_show():
    """--show needs a HighGUI backend (opencv-python, not -headless) and a display."""
    if not _has_gui():
        raise HeadposeError(
            "--show needs OpenCV with a GUI, and opencv-python-headless has none: "
            "pip uninstall -y opencv-python-headless && pip install opencv-python"
        )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise HeadposeError("--show needs a display (neither DISPLAY nor WAYLAND_DISPLAY is set)")
    try:
        cv2.namedWindow("headpose", cv2.WINDOW_NORMAL)
    except cv2.error as e:
        raise HeadposeError(f"--show: OpenCV cannot open a window ({str(e).strip().splitlines()[-1]})") from None


def _echo(res: PoseResult):
    where = f"{res.source} frame {res.frame}" if res.time_s is not None else res.source
    if not res:
        print(f"{where}: no face")
    for i, p in enumerate(res, 1):
        x0, y0, x1, y1 = p.box
        track = f" track {p.track}" if p.track is not None else ""
        print(f"{where}: face {i}{track} box [{x0:.0f} {y0:.0f} {x1:.0f} {y1:.0f}] score {p.score:.2f}  "
              f"yaw {p.yaw:+6.1f}  pitch {p.pitch:+6.1f}  roll {p.roll:+6.1f}")


class _Destinations:
    """Where the annotated copy of each image / video goes under ``out`` (None: nowhere). ``root`` and
    ``videos``: the source folder and its videos, when the source is a folder."""

    def __init__(self, out: Path | None, root: Path | None = None, videos: list[Path] = ()):
        self.out, self.root = out, root
        self.videos = video_names(root, list(videos)) if root is not None else {}

    def __call__(self, res: PoseResult) -> Path | None:
        if self.out is None:
            return None
        if res.source.startswith("webcam:"):
            return self.out / f"webcam{res.source.split(':', 1)[1]}.mp4"
        path = Path(res.source)
        dest = self.for_path(path, video=res.time_s is not None)
        if dest.exists() and dest.samefile(path):  # check_outputs refuses these up front; never overwrite an input
            raise HeadposeError(f"--out {self.out}: the annotated copy {dest} would overwrite the input {path}")
        return dest

    def for_path(self, path: Path, video: bool) -> Path:
        """The annotated copy's path for the image or video file ``path``."""
        if self.root is not None:
            return self.out / (self.videos[path] if video else path.relative_to(self.root))
        return self.out / (path.stem + ".mp4" if video else path.name)


def check_outputs(source: Path | None, out: Path | None, json_out) -> None:
    """Refuse, before any work, outputs that would fail at the end of a run or destroy an input: ``--out`` must be
    a folder (created if needed) that is not the source folder and would not receive an annotated copy under the
    input's own name; ``--json`` a file in a writable folder."""
    if out is not None:
        if not out.exists() and (out.suffix.lower() in IMAGE_EXTS or out.suffix.lower() in VIDEO_EXTS):
            raise HeadposeError(f"--out {out}: --out is the folder for the annotated copies, not a file name "
                                f"(e.g. --out {out.with_suffix('')})")
        writable_dir(out, f"--out {out}")
        if source is not None and source.is_dir() and out.resolve() == source.resolve():
            raise HeadposeError(f"--out {out}: the source folder itself, where the annotated copies would replace "
                                "the originals: choose another folder")
        if source is not None and source.is_file():
            dest = _Destinations(out).for_path(source, video=media_kind(source) == "video")
            if dest.exists() and dest.samefile(source):
                raise HeadposeError(f"--out {out}: the annotated copy {dest} would overwrite the input {source}: "
                                    "choose another folder")
    if json_out:
        writable_file(json_out, f"--json {json_out}", "poses.jsonl")


def predict_source(source, model=None, out=None, json_out=None, show: bool = False, threads: int | None = None,
                   min_score: float = 0.5, detector: str = "full", quiet: bool = False,
                   estimator: HeadPoseEstimator | None = None, flip: bool | None = None, smooth: bool = False,
                   draw: str = "axis", fallback: bool | None = None) -> dict:
    """``headpose predict``: pose of every face in an image, a folder (recursive), a video file or a webcam.

    ``out``: folder for annotated images (same relative paths) / videos (``.mp4``). ``json_out``: JSON Lines
    report. ``threads``: worker threads for folders and videos (default: up to 2). Without ``out`` and
    ``json_out`` (and unless ``quiet``) every face is printed. ``estimator``: an existing
    :class:`HeadPoseEstimator` to use (``model``, ``detector`` and ``min_score`` are then ignored).
    ``smooth``: One-Euro smoothing of each tracked face's angles in videos; ``draw``: ``axis`` or ``cube``;
    ``fallback``: the detector's further passes when the first finds nothing (:class:`HeadPoseEstimator`).
    Returns the summary: counts (``images``, ``videos``, ``frames``, ``faces``, ``no_face``),
    ``skipped`` [(name, reason)] and ``written`` paths.
    """
    from tqdm import tqdm

    from headpose.draw import DRAW_STYLES

    if draw not in DRAW_STYLES:
        raise HeadposeError(f"--draw {draw}: expected one of {', '.join(DRAW_STYLES)}")
    src = str(source)
    live = is_webcam(src)
    path = Path(src)
    if not live and not path.exists():
        raise HeadposeError(f"{src}: no such file or folder (give an image, a folder, a video or a webcam index)")
    out = Path(out) if out else None
    check_outputs(None if live else path, out, json_out)
    if show:
        _check_show()
    est = estimator or HeadPoseEstimator(model, detector=detector, min_score=min_score, threads=threads, flip=flip,
                                         fallback=fallback)
    workers = max(1, threads or min(2, os.cpu_count() or 1))
    outputs = Outputs(json_out)
    echo = not quiet and out is None and json_out is None
    folder = path.is_dir() and not live
    images, videos, _ = folder_media(path, out) if folder else ([], [], [])  # listed once, here
    dest_of = _Destinations(out, path if folder else None, videos)
    counts: Counter = Counter()
    skipped: list[tuple[str, str]] = []
    bar = None  # files of a folder
    vbar = None  # frames of the current video
    video = None  # (source, output path or None)

    def skip(name: str, reason: str):
        skipped.append((name, reason))
        if reason != OTHER:
            (bar.write if bar is not None else print)(f"headpose: skipped {name}: {reason}", file=sys.stderr)
            if bar is not None and not reason.startswith(TRUNCATED):
                bar.update(1)

    def end_video():
        nonlocal video, vbar
        if video is not None and video[1] is not None:
            outputs.close_video(video[1])
        if vbar is not None:
            vbar.close()
        video, vbar = None, None

    def display(image, wait: int = 1) -> bool:
        cv2.imshow("headpose", image)
        key = cv2.waitKey(wait) & 0xFF
        closed = cv2.getWindowProperty("headpose", cv2.WND_PROP_VISIBLE) < 1
        return key in (ord("q"), 27) or closed

    if folder:
        bar = tqdm(total=len(images) + len(videos), unit="file", desc=path.name or src, disable=None)
    if live and not quiet:
        print(f"webcam {src}: press q in the window or Ctrl-C to stop", file=sys.stderr)
    single_image = not live and path.is_file() and media_kind(path) == "image"
    results = est.stream(int(src) if live else path, batch=1 if live else 16, workers=1 if live else workers,
                         smooth=smooth, on_skip=skip, exclude=out)
    try:
        try:
            for res in results:
                dest = dest_of(res)
                if res.time_s is None:  # an image
                    counts["images"] += 1
                else:
                    if video is None or video[0] != res.source:
                        end_video()
                        h, w = res.image_shape[:2]
                        video = (res.source, outputs.open_video(dest, res.fps, (w, h)) if dest else None)
                        counts["videos"] += 1
                        if bar is not None:
                            bar.update(1)
                        if not live:
                            vbar = tqdm(total=res.frame_count, unit="frame", desc=Path(res.source).name,
                                        disable=None, leave=False)
                    counts["frames"] += 1
                    if vbar is not None:
                        vbar.update(1)
                counts["faces"] += len(res)
                counts["no_face"] += not res
                outputs.rows(res.to_rows())
                if echo:
                    _echo(res)
                if dest is not None or show:
                    canvas = res.plot(style=draw)
                    if res.time_s is None and dest is not None:
                        write_image(dest, canvas)
                    elif video is not None and video[1] is not None:
                        outputs.frame(video[1], canvas)
                if res.time_s is None and bar is not None:
                    bar.update(1)
                if show and display(canvas, wait=0 if single_image else 1):
                    break  # q, Esc or the window closed
        except KeyboardInterrupt:
            if not live:
                raise  # Ctrl-C is how a webcam run ends: keep what was recorded
        finally:
            results.close()  # releases an open video or webcam
        end_video()
    except BaseException:
        outputs.abort()  # no half-written report or video
        raise
    finally:
        if bar is not None:
            bar.close()
        if show:
            cv2.destroyAllWindows()
    if folder and not (counts["images"] or counts["videos"]):
        outputs.abort()
        raise HeadposeError(f"{path}: none of its {len(images) + len(videos)} images/videos could be read")
    outputs.commit()
    summary = {**{k: counts[k] for k in ("images", "videos", "frames", "faces", "no_face")},
               "skipped": skipped, "written": [str(p) for p in outputs.written]}
    if out is not None:
        summary["out"] = str(out)
    if not quiet:
        print(format_summary(summary))
    return summary
