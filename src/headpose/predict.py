"""Head pose of every face in images, folders, videos and webcams: ``headpose predict`` and ``headpose demo``.

Python API::

    from headpose import HeadPoseEstimator
    est = HeadPoseEstimator()                 # bundled LiteRT model, full-range BlazeFace
    for face in est.predict(image_bgr):       # list[FacePose]
        print(face.box, face.score, face.yaw, face.pitch, face.roll)
    angles = est.predict_crops(crops)         # N×3 [yaw, pitch, roll] for pre-cropped faces
    for poses in est.predict_many(frames, workers=2): ...   # a stream of frames, batched, in order

Faces come from :class:`headpose.detect.FaceDetector` and are cropped with :func:`headpose.detect.crop_face`
at its default margin, the same crop as the detector-cropped training data. The pose model runs in its natural
runtime (:func:`headpose.runtime.open_model`): LiteRT for the bundled ``.tflite``, so no TensorFlow is imported
here (a ``.keras`` model given explicitly does import Keras).

Batching: :meth:`HeadPoseEstimator.predict_many` detects faces frame by frame (BlazeFace has a fixed batch of 1;
with ``workers`` > 1 several frames are detected at once in threads, each with its own detector: LiteRT and
OpenCV release the GIL) and runs the pose model once on the crops of all faces of ``batch`` frames.

Report (``--json``, JSON Lines): one object per face, ``{"source", "frame", "box": [x0, y0, x1, y1], "score",
"yaw", "pitch", "roll"}`` (pixels, degrees; ``frame`` is the frame number in a video, 0 for an image). An image
or frame with no face gets one object with ``box``, ``score`` and the angles ``null``. Unreadable images,
broken videos and files that are neither are named on stderr, skipped and counted in the summary.
"""

from __future__ import annotations

import json
import os
import queue
import sys
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from headpose.detect import DEFAULT_MARGIN, FaceDetector, as_bgr, crop_face
from headpose.errors import HeadposeError
from headpose.io import IMAGE_EXTS, WRITE_IMAGE_EXTS, temp_path, write_atomic, write_image_atomic
from headpose.runtime import BUNDLED, WEIGHTS, open_model, prepare_input, resolve_model

PACKAGE = Path(__file__).resolve().parent
DEFAULT_MODEL = WEIGHTS / BUNDLED["full"]


def demo_photo() -> np.ndarray:
    """The demo photo (BGR): Grace Hopper's 1984 US Navy portrait (public domain), as matplotlib (a core
    dependency) ships it in its sample data — so the demo needs no download and the repository no copy of it."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if photo is None:
        raise HeadposeError(f"{path}: the demo photo (matplotlib sample data) is missing or unreadable; "
                            "reinstall matplotlib")
    return photo


VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts",
              ".mts", ".m2ts", ".ogv", ".gif"}

# Skip reasons, as counted in the summary.
UNREADABLE = "unreadable image"
BROKEN = "broken video"
TRUNCATED = "video ended early"
OTHER = "not an image or video"


def default_model() -> Path:
    """The bundled pose model; HeadposeError naming the file if this build has none."""
    return resolve_model("full")


def model_card(model_path) -> dict:
    """The ``MODEL.json`` beside a model file (training data, crop margin, validation MAE), or {}."""
    card = Path(model_path).with_suffix(".json")
    if not card.exists():
        return {}
    try:
        return json.loads(card.read_text())
    except (OSError, ValueError) as e:
        raise HeadposeError(f"{card}: unreadable model card ({e})") from None


@dataclass
class FacePose:
    """One face: detector box (x0, y0, x1, y1 pixels) and score, and the head pose in degrees."""

    box: tuple[float, float, float, float]
    score: float
    yaw: float
    pitch: float
    roll: float
    keypoints: np.ndarray | None = field(default=None, repr=False, compare=False)  # 6×2, BlazeFace order

    @property
    def angles(self) -> tuple[float, float, float]:
        return self.yaw, self.pitch, self.roll

    def to_dict(self) -> dict:
        """``{"box": [x0, y0, x1, y1], "score", "yaw", "pitch", "roll"}`` with plain floats."""
        return {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
                "yaw": round(float(self.yaw), 3), "pitch": round(float(self.pitch), 3),
                "roll": round(float(self.roll), 3)}


class HeadPoseEstimator:
    """Faces and their head pose in BGR images.

    ``model``: pose model file (``.tflite`` / ``.onnx`` / ``.keras``), or a bundled model's name: ``"full"``
    (the default), ``"lite"`` (half width: about 1.9× faster per crop, less accurate), ``"full-int8"``,
    ``"lite-int8"`` (see :data:`headpose.runtime.BUNDLED`).
    ``detector``: ``"full"`` (full-range BlazeFace, faces up to a few metres), ``"short"`` (faces close to the
    camera; about 3× faster), a :class:`FaceDetector`, or ``None`` (only :meth:`predict_crops`).
    ``min_score``: detector threshold. ``threads``: CPU threads of the pose model and the default number of
    detection workers of :meth:`predict_many` (``None``: runtime default, one worker).
    ``flip``: also read each crop's mirror image and average (:class:`headpose.runtime.FlipAverage`: twice the
    pose compute, a few tenths of a degree more accurate).
    ``margin``: crop margin around the detector box (default: the model's own, from the ``crop_margin`` of a
    ``MODEL.json`` beside the model file, as the bundled model has; else :data:`headpose.detect.DEFAULT_MARGIN`).
    One estimator serves one calling thread at a time (its own worker threads aside): give each thread its own.
    """

    def __init__(self, model=None, detector="full", min_score: float = 0.5, threads: int | None = None,
                 margin: float | None = None, flip: bool = False):
        self.model_path = default_model() if model is None else resolve_model(model)
        self.runner = open_model(self.model_path, threads, flip=flip)
        self.size = int(self.runner.img_size)
        self.channels = int(self.runner.channels)
        self.margin = float(model_card(self.model_path).get("crop_margin", DEFAULT_MARGIN) if margin is None
                            else margin)
        self.threads = threads
        if detector is None or isinstance(detector, FaceDetector):
            self.detector = detector
        else:
            self.detector = FaceDetector(detector, min_score=min_score, threads=1)
        self._spare: queue.SimpleQueue = queue.SimpleQueue()  # idle detectors, see _detect_crop
        if self.detector is not None:
            self._spare.put(self.detector)

    # --- pose of given crops -------------------------------------------------------------------------------
    def predict_crops(self, crops, batch_size: int = 64) -> np.ndarray:
        """[yaw, pitch, roll] (float32 N×3, degrees) of face crops: uint8/float BGR N×S×S×3 (or one S×S×3),
        cropped like :func:`headpose.detect.crop_face`. Crops of another size are resized to the model's."""
        x = np.asarray(crops)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != x.shape[2] or x.shape[3] not in (1, 3):
            raise HeadposeError(f"expected face crops N×S×S×3, got shape {x.shape}")
        if len(x) == 0:
            return np.zeros((0, 3), np.float32)
        return self.runner(prepare_input(x, self.channels, self.size), batch_size=batch_size)

    # --- faces in images -----------------------------------------------------------------------------------
    def _detect_crop(self, image: np.ndarray):
        """Faces and their crops in one image. A LiteRT interpreter must not run on two threads at once: each
        call borrows a detector (the main one, or a copy made when all are busy) and gives it back."""
        if self.detector is None:
            raise HeadposeError("this HeadPoseEstimator has no face detector (detector=None): use predict_crops")
        try:
            det = self._spare.get_nowait()
        except queue.Empty:
            det = FaceDetector(self.detector.model, min_score=self.detector.min_score, threads=1,
                               fallback=self.detector.fallback)
        try:
            faces = det.detect(image)
            crops = [crop_face(image, f.box, self.margin, self.size) for f in faces]
        finally:
            self._spare.put(det)
        return faces, crops

    def _finish(self, found: list) -> list[list[FacePose]]:
        """Pose of all faces of several images in one batch; ``found`` = [(faces, crops)] per image."""
        crops = [c for _, cs in found for c in cs]
        angles = self.predict_crops(np.stack(crops)) if crops else np.zeros((0, 3), np.float32)
        out, k = [], 0
        for faces, _ in found:
            poses = []
            for f in faces:
                y, p, r = (float(v) for v in angles[k])
                poses.append(FacePose(tuple(float(v) for v in f.box), float(f.score), y, p, r, f.keypoints))
                k += 1
            out.append(poses)
        return out

    def predict(self, image_bgr: np.ndarray) -> list[FacePose]:
        """Every face in one BGR image (uint8 H×W×3; grayscale and BGRA are converted), best score first."""
        return self._finish([self._detect_crop(image_bgr)])[0]

    def predict_batch(self, images: Iterable[np.ndarray]) -> list[list[FacePose]]:
        """:meth:`predict` for several images, with a single pose-model call for all their faces."""
        return self._finish([self._detect_crop(im) for im in images])

    def predict_many(self, frames: Iterable[np.ndarray], batch: int = 16,
                     workers: int | None = None) -> Iterator[list[FacePose]]:
        """Faces of a stream of frames (a generator is fine), yielded per frame in input order.

        Pose runs once per ``batch`` frames; ``workers`` threads detect and crop (default ``threads``, or 1).
        """
        for _, _, poses in self._stream(((None, f) for f in frames), batch, workers):
            yield poses

    def _stream(self, items: Iterable[tuple], batch: int = 16, workers: int | None = None):
        """(tag, frame) items → (tag, frame, poses), in order. The frames are pulled on the calling thread."""
        workers = max(1, int(workers or self.threads or 1))
        batch = max(1, int(batch))
        if workers == 1:
            chunk = []
            for tag, frame in items:
                chunk.append((tag, frame, self._detect_crop(frame)))
                if len(chunk) == batch:
                    yield from self._emit(chunk)
                    chunk = []
            yield from self._emit(chunk)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="headpose-detect") as pool:
            pending: deque = deque()
            for tag, frame in items:
                pending.append((tag, frame, pool.submit(self._detect_crop, frame)))
                if len(pending) >= 2 * batch:  # keep the workers busy while this thread runs the pose model
                    yield from self._emit([pending.popleft() for _ in range(batch)])
            while pending:
                yield from self._emit([pending.popleft() for _ in range(min(batch, len(pending)))])

    def _emit(self, chunk: list):
        if not chunk:
            return
        found = [c[2].result() if isinstance(c[2], Future) else c[2] for c in chunk]
        for (tag, frame, _), poses in zip(chunk, self._finish(found)):
            yield tag, frame, poses


# ----------------------------------------------------------------------------------------------------------
# Drawing and the JSON report
# ----------------------------------------------------------------------------------------------------------
def annotate(image: np.ndarray, poses: list[FacePose]) -> np.ndarray:
    """A copy of ``image`` with each face's box, pose axes and angles drawn (or "no face" when none)."""
    from headpose.draw import draw_face

    canvas = as_bgr(image).copy()
    for f in poses:
        draw_face(canvas, f.box, f.yaw, f.pitch, f.roll, score=f.score)
    if not poses:
        scale = float(np.clip(min(canvas.shape[:2]) / 600, 0.4, 1.5))
        cv2.putText(canvas, "no face found", (8, round(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 255), max(1, round(2 * scale)), cv2.LINE_AA)
    return canvas


def report_rows(source: str, frame: int, poses: list[FacePose]) -> list[dict]:
    """The JSON Lines objects for one image or frame: one per face, or one with null angles if no face."""
    if not poses:
        return [{"source": source, "frame": frame, "box": None, "score": None, "yaw": None, "pitch": None,
                 "roll": None}]
    return [{"source": source, "frame": frame, **p.to_dict()} for p in poses]


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write an image atomically (temp name + rename); unknown extensions become ``.png``."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_IMAGE_EXTS:
        path = path.with_suffix(".png")
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if path.suffix.lower() in (".jpg", ".jpeg") else []
    return write_image_atomic(path, image, params)


class _Outputs:
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


# ----------------------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------------------
def media_kind(path: Path) -> str:
    """``"image"``, ``"video"`` or ``"other"``, by the file's extension."""
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else "other"


_kind = media_kind


def read_image(path: Path) -> np.ndarray | None:
    """The image as BGR uint8, or None when OpenCV cannot decode it."""
    try:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    return img if img is not None and img.size else None


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


class _Run:
    """State of one ``predict_source`` call: counts, skipped files, outputs, progress."""

    def __init__(self, est: HeadPoseEstimator, out, outputs: _Outputs, show: bool, echo: bool, workers: int):
        self.est, self.out, self.outputs, self.show, self.echo, self.workers = est, out, outputs, show, echo, workers
        self.counts = Counter()
        self.skipped: list[tuple[str, str]] = []
        self.stopped = False

    def skip(self, name: str, reason: str, bar=None):
        self.skipped.append((name, reason))
        if reason != OTHER:
            msg = f"headpose: skipped {name}: {reason}"
            if bar is not None:
                bar.write(msg, file=sys.stderr)
            else:
                print(msg, file=sys.stderr)

    def record(self, source: str, frame: int, poses: list[FacePose], video: bool = False):
        self.counts["faces"] += len(poses)
        if not poses:
            self.counts["no_face"] += 1
        self.outputs.rows(report_rows(source, frame, poses))
        if self.echo:
            where = f"{source} frame {frame}" if video else source
            if not poses:
                print(f"{where}: no face")
            for i, p in enumerate(poses, 1):
                x0, y0, x1, y1 = p.box
                print(f"{where}: face {i} box [{x0:.0f} {y0:.0f} {x1:.0f} {y1:.0f}] score {p.score:.2f}  "
                      f"yaw {p.yaw:+6.1f}  pitch {p.pitch:+6.1f}  roll {p.roll:+6.1f}")

    def display(self, image: np.ndarray, wait: int = 1):
        if not self.show:
            return
        cv2.imshow("headpose", image)
        key = cv2.waitKey(wait) & 0xFF
        closed = cv2.getWindowProperty("headpose", cv2.WND_PROP_VISIBLE) < 1
        if key in (ord("q"), 27) or closed:
            self.stopped = True

    # --- images ----------------------------------------------------------------------------------------------
    def images(self, files: list[tuple[Path, Path | None]], bar=None):
        """files: (path, annotated output path or None)."""

        def frames():
            for path, dest in files:
                if self.stopped:
                    return
                img = read_image(path)
                if img is None:
                    self.skip(str(path), UNREADABLE, bar)
                    if bar is not None:
                        bar.update(1)
                    continue
                yield (path, dest), img

        for (path, dest), img, poses in self.est._stream(frames(), batch=16, workers=self.workers):
            self.counts["images"] += 1
            self.record(str(path), 0, poses)
            if dest is not None or self.show:
                canvas = annotate(img, poses)
                if dest is not None:
                    write_image(dest, canvas)
                self.display(canvas, wait=0 if len(files) == 1 else 1)
            if bar is not None:
                bar.update(1)

    # --- videos and webcams ----------------------------------------------------------------------------------
    def video(self, cap, first, name: str, dest: Path | None, live: bool, total: int | None = None, tqdm=None):
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if 0 < fps < 1000 else 30.0
        h, w = first.shape[:2]
        vid = self.outputs.open_video(dest, fps, (w, h)) if dest is not None else None
        bar = None
        if tqdm is not None and not live:
            bar = tqdm(total=total or None, unit="frame", desc=Path(name).name, disable=None, leave=False)
        n = 0

        def frames():
            yield 0, first
            i = 1
            while not self.stopped:
                ok, f = cap.read()
                if not ok or f is None:
                    return
                yield i, f
                i += 1

        try:
            # Live sources are processed frame by frame (no latency); files in batches.
            for i, frame, poses in self.est._stream(frames(), batch=1 if live else 16,
                                                    workers=1 if live else self.workers):
                n += 1
                self.record(name, i, poses, video=True)
                if vid is not None or self.show:
                    canvas = annotate(frame, poses)
                    if vid is not None:
                        self.outputs.frame(vid, canvas)
                    self.display(canvas)
                if bar is not None:
                    bar.update(1)
        except KeyboardInterrupt:
            if not live:
                raise
            self.stopped = True  # Ctrl-C is how a webcam run ends: keep what was recorded
        finally:
            cap.release()
            if bar is not None:
                bar.close()
        self.counts["frames"] += n
        self.counts["videos"] += 1
        if vid is not None:
            self.outputs.close_video(vid)
        if total and not live and not self.stopped and n < 0.98 * total - 1:
            self.skip(name, f"{TRUNCATED} (frame {n} of {total})")
        return vid


def _out_path(out: Path | None, rel: Path) -> Path | None:
    return None if out is None else out / rel


def predict_source(source, model=None, out=None, json_out=None, show: bool = False, threads: int | None = None,
                   min_score: float = 0.5, detector: str = "full", quiet: bool = False,
                   estimator: HeadPoseEstimator | None = None, flip: bool = False) -> dict:
    """``headpose predict``: pose of every face in an image, a folder (recursive), a video file or a webcam.

    ``out``: folder for annotated images (same relative paths) / videos (``.mp4``). ``json_out``: JSON Lines
    report. ``threads``: worker threads for folders and videos (default: up to 2). Without ``out`` and
    ``json_out`` (and unless ``quiet``) every face is printed. ``estimator``: an existing
    :class:`HeadPoseEstimator` to use (``model``, ``detector`` and ``min_score`` are then ignored).
    Returns the summary: counts (``images``, ``videos``, ``frames``, ``faces``, ``no_face``),
    ``skipped`` [(name, reason)] and ``written`` paths.
    """
    from tqdm import tqdm

    src = str(source)
    webcam = src.isdigit() and not Path(src).exists()
    path = Path(src)
    if not webcam and not path.exists():
        raise HeadposeError(f"{src}: no such file or folder (give an image, a folder, a video or a webcam index)")
    if show:
        _check_show()
    est = estimator or HeadPoseEstimator(model, detector=detector, min_score=min_score, threads=threads, flip=flip)
    out = Path(out) if out else None
    workers = max(1, threads or min(2, os.cpu_count() or 1))
    outputs = _Outputs(json_out)
    run = _Run(est, out, outputs, show, echo=not quiet and out is None and json_out is None, workers=workers)
    try:
        if webcam:
            cap = cv2.VideoCapture(int(src))
            ok, first = cap.read() if cap.isOpened() else (False, None)
            if not ok:
                cap.release()
                raise HeadposeError(f"webcam {src}: cannot open it or read a frame")
            if not quiet:
                print(f"webcam {src}: press q in the window or Ctrl-C to stop", file=sys.stderr)
            run.video(cap, first, f"webcam:{src}", _out_path(out, Path(f"webcam{src}.mp4")), live=True)
        elif path.is_dir():
            _folder(run, path, out, tqdm)
        else:
            _file(run, path, out, tqdm)
    except BaseException:
        outputs.abort()
        raise
    finally:
        if show:
            cv2.destroyAllWindows()
    outputs.commit()
    summary = {**{k: run.counts[k] for k in ("images", "videos", "frames", "faces", "no_face")},
               "skipped": run.skipped, "written": [str(p) for p in outputs.written]}
    if out is not None:
        summary["out"] = str(out)
    if not quiet:
        print(format_summary(summary))
    return summary


def _file(run: _Run, path: Path, out: Path | None, tqdm):
    kind = _kind(path)
    if kind != "video":
        img = read_image(path)
        if img is not None:
            run.images([(path, _out_path(out, Path(path.name)))])
            return
        if kind == "image":
            raise HeadposeError(f"{path}: unreadable image (corrupt, truncated or not an image OpenCV can decode)")
    opened = open_video(path)
    if opened is None:
        what = "broken video (OpenCV cannot open or decode it)" if kind == "video" else \
            "neither an image nor a video OpenCV can read"
        raise HeadposeError(f"{path}: {what}")
    cap, first = opened
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    run.video(cap, first, str(path), _out_path(out, Path(path.stem + ".mp4")), live=False, total=total, tqdm=tqdm)


def list_folder(root: Path, out: Path | None = None) -> list[Path]:
    """Every file below ``root`` in name order, hidden files and folders and ``out`` (our own output) left out."""
    out_abs = out.resolve() if out is not None else None
    files = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        if out_abs is not None and out_abs in p.resolve().parents:
            continue  # our own output inside the source folder
        files.append(p)
    return files


def _folder(run: _Run, root: Path, out: Path | None, tqdm):
    files = list_folder(root, out)
    media = [p for p in files if _kind(p) != "other"]
    for p in files:
        if _kind(p) == "other":
            run.skip(str(p), OTHER)
    if not media:
        raise HeadposeError(f"{root}: no images or videos in this folder (or below it)")
    images = [p for p in media if _kind(p) == "image"]
    videos = [p for p in media if _kind(p) == "video"]
    stems = Counter(p.with_suffix("") for p in videos)  # a.avi and a.mov both → a.avi.mp4, a.mov.mp4

    def video_out(p: Path) -> Path:
        rel = p.relative_to(root)
        return rel.with_name(rel.name + ".mp4") if stems[p.with_suffix("")] > 1 else rel.with_suffix(".mp4")

    with tqdm(total=len(media), unit="file", desc=root.name or str(root), disable=None) as bar:
        if images:
            run.images([(p, _out_path(out, p.relative_to(root))) for p in images], bar)
        for p in videos:
            if run.stopped:
                break
            opened = open_video(p)
            if opened is None:
                run.skip(str(p), BROKEN, bar)
            else:
                cap, first = opened
                total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
                run.video(cap, first, str(p), _out_path(out, video_out(p)), live=False, total=total, tqdm=tqdm)
            bar.update(1)
    if not (run.counts["images"] or run.counts["videos"]):
        raise HeadposeError(f"{root}: none of its {len(media)} images/videos could be read")


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
        lines.append(f"skipped {len(s['skipped'])}: " + ", ".join(f"{n} {r}" for r, n in by.most_common()))
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


# ----------------------------------------------------------------------------------------------------------
# Demo
# ----------------------------------------------------------------------------------------------------------
DEMO_PANELS = ("photo", "mirrored", "rolled 20°")


def demo_image() -> np.ndarray:
    """The demo input, built from :func:`demo_photo` (public domain): the photo,
    its mirror image (yaw and roll change sign) and the photo turned by 20° in the image plane (roll), side by
    side, 3 faces in one 768×300 BGR image."""
    photo = demo_photo()
    panel = cv2.resize(photo, (256, 300), interpolation=cv2.INTER_AREA)
    h, w = panel.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h * 0.45), 20.0, 1.0)
    rolled = cv2.warpAffine(panel, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.hstack([panel, panel[:, ::-1], rolled])


def demo(out="headpose-demo", model=None, quiet: bool = False) -> list[dict]:
    """``headpose demo``: predict on the bundled photo (no download, no data folder), write the annotated image
    ``OUT/demo.jpg``, the input ``OUT/demo-input.jpg`` and the report ``OUT/demo.jsonl``; print the angles.
    Returns the report rows."""
    out = Path(out)
    image = demo_image()
    est = HeadPoseEstimator(model)
    poses = sorted(est.predict(image), key=lambda f: f.box[0])
    source = "demo:grace_hopper"
    rows = report_rows(source, 0, poses)
    write_image(out / "demo-input.jpg", image)
    annotated = write_image(out / "demo.jpg", annotate(image, poses))
    report = out / "demo.jsonl"
    write_atomic(report, "".join(json.dumps(r) + "\n" for r in rows))
    if not quiet:
        print(f"headpose demo: {len(poses)} face{'s' * (len(poses) != 1)} in a photo of Grace Hopper "
              f"(US Navy, public domain): as is, mirrored, and rolled 20° (model: {est.model_path.name})")
        for i, p in enumerate(poses):
            label = DEMO_PANELS[min(int((p.box[0] + p.box[2]) / 2 // 256), 2)]
            print(f"  face {i + 1} ({label}): yaw {p.yaw:+6.1f}°  pitch {p.pitch:+6.1f}°  roll {p.roll:+6.1f}°  "
                  f"(detector score {p.score:.2f})")
        print(f"wrote {annotated}, {report}")
    return rows
