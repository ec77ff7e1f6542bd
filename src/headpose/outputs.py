"""What ``predict`` writes: annotated images and videos, the JSON Lines report, the summary.

Report (``--json``, JSON Lines): one object per face, ``{"source", "frame", "time_s", "track", "box": [x0, y0, x1,
y1], "score", "yaw", "pitch", "roll"}`` (pixels, degrees; ``frame`` is the frame number in a video, 0 for an
image; ``time_s`` the frame's time in seconds, null for an image; ``track`` the face's id across the frames of a
video, null for an image). An image or frame with no face gets one object with ``track``, ``box``, ``score`` and
the angles null. Every file is written under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from headpose.detect import as_bgr
from headpose.errors import HeadposeError
from headpose.io import WRITE_IMAGE_EXTS, temp_path, write_image_atomic


def annotate(image: np.ndarray, poses, style: str = "axis") -> np.ndarray:
    """A copy of ``image`` with each face's box, pose (``style``: ``axis`` or ``cube``, see
    :func:`headpose.draw.draw_face`), angles and track id drawn (or "no face found" when there is none)."""
    from headpose.draw import draw_face

    canvas = as_bgr(image).copy()
    for f in poses:
        draw_face(canvas, f.box, f.yaw, f.pitch, f.roll, score=f.score, style=style, track=f.track)
    if not poses:
        scale = float(np.clip(min(canvas.shape[:2]) / 600, 0.4, 1.5))
        cv2.putText(canvas, "no face found", (8, round(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 255), max(1, round(2 * scale)), cv2.LINE_AA)
    return canvas


def report_rows(source: str, frame: int, poses, time_s: float | None = None) -> list[dict]:
    """The JSON Lines objects for one image or frame: one per face, or one with null angles if no face."""
    head = {"source": source, "frame": frame, "time_s": None if time_s is None else round(float(time_s), 4)}
    if not poses:
        return [{**head, "track": None, "box": None, "score": None, "yaw": None, "pitch": None, "roll": None}]
    return [{**head, **p.to_dict()} for p in poses]


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write an image atomically (temp name + rename); unknown extensions become ``.png``."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_IMAGE_EXTS:
        path = path.with_suffix(".png")
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if path.suffix.lower() in (".jpg", ".jpeg") else []
    return write_image_atomic(path, image, params)


class Outputs:
    """The files one run writes: a JSON Lines report and annotated images/videos, each under its temp name
    (:func:`headpose.io.temp_path`) until :meth:`commit` renames it into place (a failed or interrupted run
    leaves no half-written file). Streams stay open across calls, so this keeps the temp names itself; single
    files go through :func:`headpose.io.atomic_path`."""

    def __init__(self, json_out):
        self.json_path = Path(json_out) if json_out else None
        self.json_tmp = None
        self.json_file = None
        self.videos: dict[Path, tuple[Path, cv2.VideoWriter]] = {}
        self.written: list[Path] = []
        if self.json_path:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self.json_tmp = temp_path(self.json_path)
            self.json_file = open(self.json_tmp, "w")  # noqa: SIM115 (closed by commit/abort)

    def rows(self, rows: list[dict]):
        if self.json_file:
            for r in rows:
                self.json_file.write(json.dumps(r) + "\n")

    def open_video(self, path: Path, fps: float, size: tuple[int, int]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        for ext, codec in ((".mp4", "mp4v"), (".avi", "MJPG")):
            p = path.with_suffix(ext)
            tmp = temp_path(p)
            w = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), fps, size)
            if w.isOpened():
                self.videos[p] = (tmp, w)
                return p
            w.release()
            tmp.unlink(missing_ok=True)
        raise HeadposeError(f"{path}: OpenCV cannot write video here (no mp4v or MJPG encoder)")

    def frame(self, path: Path, image: np.ndarray):
        self.videos[path][1].write(image)

    def close_video(self, path: Path, keep: bool = True):
        tmp, w = self.videos.pop(path)
        w.release()
        if keep:
            os.replace(tmp, path)
            self.written.append(path)
        else:
            tmp.unlink(missing_ok=True)

    def commit(self):
        for p in list(self.videos):
            self.close_video(p)
        if self.json_file:
            self.json_file.close()
            self.json_file = None
            os.replace(self.json_tmp, self.json_path)
            self.written.append(self.json_path)

    def abort(self):
        for p in list(self.videos):
            self.close_video(p, keep=False)
        if self.json_file:
            self.json_file.close()
            self.json_file = None
            self.json_tmp.unlink(missing_ok=True)


def format_summary(s: dict) -> str:
    parts = [f"{s['images']} image{'s' * (s['images'] != 1)}"] if s["images"] or not s["videos"] else []
    if s["videos"]:
        parts.append(f"{s['videos']} video{'s' * (s['videos'] != 1)} ({s['frames']} frames)")
    line = f"processed {', '.join(parts)}: {s['faces']} face{'s' * (s['faces'] != 1)}"
    if s["no_face"]:
        line += f", {s['no_face']} {'image or frame' if s['no_face'] == 1 else 'images or frames'} with no face"
    lines = [line]
    if s["skipped"]:
        by = Counter(r.split(" (")[0] for _, r in s["skipped"])
        n = len(s["skipped"])
        lines.append(f"skipped {n} file{'s' * (n != 1)} (" + ", ".join(f"{r}: {k}" for r, k in by.most_common()) + ")")
        for reason in by:
            names = [n for n, r in s["skipped"] if r.split(" (")[0] == reason]
            shown = ", ".join(names[:10]) + (f", ... and {len(names) - 10} more" if len(names) > 10 else "")
            lines.append(f"  {reason}: {shown}")
    if s.get("out"):
        lines.append(f"annotated images/videos in {s['out']}")
    reports = [p for p in s["written"] if p.endswith((".json", ".jsonl"))]
    if reports:
        lines.append(f"report: {', '.join(reports)}")
    return "\n".join(lines)
