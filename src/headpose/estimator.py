"""The Python API: faces and their head pose in images, folders, videos, webcams and streams of frames.

::

    from headpose import HeadPoseEstimator
    est = HeadPoseEstimator()                    # bundled LiteRT model, full-range BlazeFace
    res = est("photo.jpg")                       # or est(image_bgr): a PoseResult
    res.angles                                   # N×3 [yaw, pitch, roll], degrees
    for face in res:                             # FacePose: box, score, yaw, pitch, roll, rotation, track
        print(face.box, face.yaw, face.pitch, face.roll)
    cv2.imwrite("out.jpg", res.plot())           # annotated copy (res.plot(style="cube") for the pose cube)
    for res in est.stream("clip.mp4", smooth=True):   # a PoseResult per frame, faces tracked (and smoothed)
        print(res.frame, res.time_s, [(f.track, f.yaw) for f in res])
    angles = est.predict_crops(crops)            # N×3 for pre-cropped faces (a list of any sizes is fine)

Faces come from :class:`headpose.detect.FaceDetector` and are cropped with :func:`headpose.detect.crop_face` at
the model's margin, the same crop as the detector-cropped training data. The pose model runs in its natural
runtime (:func:`headpose.runtime.open_model`): LiteRT for the bundled ``.tflite``, so no TensorFlow is imported
here (a ``.keras`` model given explicitly does import Keras).

Batching: :meth:`HeadPoseEstimator.stream` detects faces frame by frame (BlazeFace has a fixed batch of 1; with
``workers`` > 1 several frames are detected at once in threads, each with its own detector: LiteRT and OpenCV
release the GIL) and runs the pose model once on the crops of all faces of ``batch`` frames.
"""

from __future__ import annotations

import json
import queue
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headpose.detect import DEFAULT_MARGIN, FaceDetector, as_bgr, crop_face
from headpose.errors import HeadposeError
from headpose.runtime import (
    BUNDLED,
    WEIGHTS,
    FlipAverage,
    default_flip,
    model_card,
    open_model,
    prepare_input,
    resolve_model,
)

DEFAULT_MODEL = WEIGHTS / BUNDLED["full"]

#: BlazeFace's six keypoints, in its order. Right and left are the subject's: for a frontal face the right eye is
#: on the image's left. The ears are the tragions (the notch in front of each ear).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")


def default_model() -> Path:
    """The bundled pose model; HeadposeError naming the file if this build has none."""
    return resolve_model("full")


@dataclass
class FacePose:
    """One face: detector box (x0, y0, x1, y1 pixels) and score, the head pose in degrees, the detector's six
    keypoints (:data:`KEYPOINT_NAMES`) and, in a video, the face's ``track`` id."""

    box: tuple[float, float, float, float]
    score: float
    yaw: float
    pitch: float
    roll: float
    keypoints: np.ndarray | None = field(default=None, repr=False, compare=False)  # 6×2 pixels, BlazeFace order
    track: int | None = None

    @property
    def angles(self) -> tuple[float, float, float]:
        return self.yaw, self.pitch, self.roll

    @property
    def rotation(self) -> np.ndarray:
        """The head's 3×3 rotation in camera axes (x to the image's right, y down, z out of the screen towards
        the viewer): its columns are the head's own x (towards the subject's left ear), y (down the face) and z
        (out of the face) axes — the axes :func:`headpose.draw.draw_axis` draws (red, green, blue). A frontal,
        upright face has the identity. See :func:`headpose.geometry.ypr_to_matrix`."""
        from headpose.geometry import ypr_to_matrix

        return ypr_to_matrix(self.yaw, self.pitch, self.roll)

    @property
    def named_keypoints(self) -> dict[str, tuple[float, float]]:
        """``{"right_eye": (x, y), ...}`` in pixels ({} when the face has no keypoints)."""
        if self.keypoints is None:
            return {}
        return {n: (float(x), float(y)) for n, (x, y) in zip(KEYPOINT_NAMES, np.asarray(self.keypoints))}

    def to_dict(self, keypoints: bool = False) -> dict:
        """``{"track", "box": [x0, y0, x1, y1], "score", "yaw", "pitch", "roll"}`` with plain numbers;
        ``keypoints``: also ``"keypoints": {"right_eye": [x, y], ...}``."""
        out = {"track": self.track, "box": [round(float(v), 2) for v in self.box],
               "score": round(float(self.score), 4), "yaw": round(float(self.yaw), 3),
               "pitch": round(float(self.pitch), 3), "roll": round(float(self.roll), 3)}
        if keypoints:
            out["keypoints"] = {n: [round(x, 2), round(y, 2)] for n, (x, y) in self.named_keypoints.items()}
        return out


class PoseResult(list):
    """The faces of one image or frame: a list of :class:`FacePose` (best detector score first), so loops and
    ``len`` work as on a list, plus where they came from and how long they took.

    ``source`` (a path, ``webcam:N``, ``array`` or ``frames``), ``frame`` (number in a video, 0 for an image),
    ``time_s`` (seconds into a video, None for an image), ``image_shape`` (H, W[, C]), ``image`` (the BGR image
    the faces were read in; :meth:`plot` draws on a copy), ``speed`` (milliseconds for this image: ``detect``,
    detection and cropping; ``pose``, its share of the batched pose model); for a video frame also ``fps`` and
    ``frame_count`` (the video's stated length, None when unknown).
    """

    def __init__(self, faces: Iterable[FacePose] = (), source: str | None = None, frame: int = 0,
                 time_s: float | None = None, image: np.ndarray | None = None, speed: dict | None = None,
                 fps: float | None = None, frame_count: int | None = None):
        super().__init__(faces)
        self.source, self.frame, self.time_s = source, int(frame), time_s
        self.fps, self.frame_count = fps, frame_count
        self.image = image
        self.image_shape = None if image is None else tuple(image.shape)
        self.speed = dict(speed or {})

    def __repr__(self) -> str:
        where = f"{self.source} frame {self.frame}" if self.time_s is not None else str(self.source)
        return f"PoseResult({where}: {len(self)} face{'s' * (len(self) != 1)} {list.__repr__(self)})"

    @property
    def angles(self) -> np.ndarray:
        """N×3 float32 [yaw, pitch, roll] in degrees."""
        return np.array([f.angles for f in self], np.float32).reshape(-1, 3)

    @property
    def boxes(self) -> np.ndarray:
        """N×4 float32 [x0, y0, x1, y1] in pixels."""
        return np.array([f.box for f in self], np.float32).reshape(-1, 4)

    @property
    def scores(self) -> np.ndarray:
        return np.array([f.score for f in self], np.float32)

    @property
    def rotations(self) -> np.ndarray:
        """N×3×3: :attr:`FacePose.rotation` of each face."""
        return np.array([f.rotation for f in self], np.float64).reshape(-1, 3, 3)

    def plot(self, style: str = "axis") -> np.ndarray:
        """An annotated copy of the image: boxes, pose axes (``style="cube"``: the pose cube), angles, track ids."""
        from headpose.outputs import annotate

        if self.image is None:
            raise HeadposeError("this PoseResult holds no image to draw on")
        return annotate(self.image, self, style=style)

    def to_rows(self, keypoints: bool = False) -> list[dict]:
        """The JSON Lines objects ``headpose predict --json`` writes for this image or frame (one per face; one
        with null angles when there is none)."""
        from headpose.outputs import report_rows

        rows = report_rows(self.source, self.frame, self, self.time_s)
        if keypoints and len(self):
            for r, f in zip(rows, self):
                r["keypoints"] = f.to_dict(keypoints=True)["keypoints"]
        return rows

    def to_json(self, keypoints: bool = False) -> str:
        """:meth:`to_rows` as a JSON array."""
        return json.dumps(self.to_rows(keypoints))

    def to_df(self, keypoints: bool = False):
        """:meth:`to_rows` as a pandas DataFrame (needs pandas; imported only here)."""
        try:
            import pandas as pd
        except ImportError:
            raise HeadposeError("PoseResult.to_df needs pandas: pip install pandas") from None
        return pd.DataFrame(self.to_rows(keypoints))


class HeadPoseEstimator:
    """Faces and their head pose in BGR images.

    ``model``: pose model file (``.tflite`` / ``.onnx`` / ``.keras``), or a bundled model's name: ``"full"``
    (the default), ``"lite"`` (half width: about 1.7× faster per crop, less accurate), ``"full-int8"``,
    ``"lite-int8"`` (see :data:`headpose.runtime.BUNDLED`).
    ``detector``: ``"full"`` (full-range BlazeFace, faces up to a few metres), ``"short"`` (faces close to the
    camera; about 3× faster), a :class:`FaceDetector`, or ``None`` (only :meth:`predict_crops`).
    ``min_score``: detector threshold. ``fallback``: when the full-range detector finds no face, look again with
    the short-range one and on the image zoomed out (the default, ``None``: on for ``"full"``; see
    :mod:`headpose.detect`). It finds the large and turned-away faces of close-ups (AFLW2000: 94% → 99.8%) and
    also more false faces in frames with none: turn it off for streams that are often empty. ``threads``: CPU
    threads of the pose model and the default number of detection workers of :meth:`stream` (``None``: runtime
    default, one worker).
    ``flip``: also read each crop's mirror image and average (:class:`headpose.runtime.FlipAverage`: twice the
    pose compute, about 0.4° more accurate); ``None`` (the default): as the model's card says — on for the
    bundled full model and its int8 sibling, off for the lite ones (:func:`headpose.runtime.default_flip`).
    ``margin``: crop margin around the detector box (default: the model's own, from the ``crop_margin`` of a
    ``MODEL.json`` beside the model file, as the bundled model has; else :data:`headpose.detect.DEFAULT_MARGIN`).
    One estimator serves one calling thread at a time (its own worker threads aside): give each thread its own.
    """

    def __init__(self, model=None, detector="full", min_score: float = 0.5, threads: int | None = None,
                 margin: float | None = None, flip: bool | None = None, fallback: bool | None = None):
        self.model_path = default_model() if model is None else resolve_model(model)
        card = model_card(self.model_path)  # read once: crop margin and mirror averaging
        self.runner = open_model(self.model_path, threads,
                                 flip=default_flip(self.model_path, card) if flip is None else flip)
        self.flip = isinstance(self.runner, FlipAverage)
        self.size = int(self.runner.img_size)
        self.channels = int(self.runner.channels)
        self.margin = float(card.get("crop_margin", DEFAULT_MARGIN) if margin is None else margin)
        self.threads = threads
        if detector is None or isinstance(detector, FaceDetector):
            self.detector = detector
        else:
            self.detector = FaceDetector(detector, min_score=min_score, threads=1, fallback=fallback)
        self._spare: queue.SimpleQueue = queue.SimpleQueue()  # idle detectors, see _detect_crop
        if self.detector is not None:
            self._spare.put(self.detector)

    # --- pose of given crops -------------------------------------------------------------------------------
    def predict_crops(self, crops, batch_size: int = 64) -> np.ndarray:
        """[yaw, pitch, roll] (float32 N×3, degrees) of face crops cropped like :func:`headpose.detect.crop_face`:
        an array N×S×S×3 (or one S×S×3), or a list of square crops of any sizes, BGR or single-channel (S×S or
        S×S×1), uint8 or float 0..255. Each is resized to the model's input by the one resize rule; an unusable
        crop is an error naming its index."""
        x = prepare_input(crops, self.channels, self.size)
        if not len(x):
            return np.zeros((0, 3), np.float32)
        return self.runner(x, batch_size=batch_size)

    # --- faces in images -----------------------------------------------------------------------------------
    def _detect_crop(self, image: np.ndarray):
        """Faces, their crops and the milliseconds it took, in one image. A LiteRT interpreter must not run on
        two threads at once: each call borrows a detector (the main one, or a copy made when all are busy)."""
        if self.detector is None:
            raise HeadposeError("this HeadPoseEstimator has no face detector (detector=None): use predict_crops")
        t0 = time.perf_counter()
        image = as_bgr(image)
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
        return faces, crops, (time.perf_counter() - t0) * 1e3

    def _finish(self, found: list) -> tuple[list[list[FacePose]], float]:
        """Pose of all faces of several images in one batch; ``found`` = [(faces, crops, ms)] per image.
        Returns the faces per image and the pose model's milliseconds per image."""
        t0 = time.perf_counter()
        crops = [c for _, cs, _ in found for c in cs]
        angles = self.predict_crops(np.stack(crops)) if crops else np.zeros((0, 3), np.float32)
        out, k = [], 0
        for faces, _, _ in found:
            poses = []
            for f in faces:
                y, p, r = (float(v) for v in angles[k])
                poses.append(FacePose(tuple(float(v) for v in f.box), float(f.score), y, p, r, f.keypoints))
                k += 1
            out.append(poses)
        return out, (time.perf_counter() - t0) * 1e3 / max(1, len(found))

    def __call__(self, image) -> PoseResult:
        """Every face in one image: a BGR array (uint8 H×W×3; grayscale and BGRA are converted) or an image
        file's path."""
        if isinstance(image, (str, Path)):
            from headpose.sources import image_error, read_image

            img = read_image(Path(image)) if Path(image).is_file() else None
            if img is None:
                raise HeadposeError(image_error(Path(image)))
            return self._results([(str(image), 0, None, img)])[0]
        return self._results([("array", 0, None, image)])[0]

    def predict(self, image_bgr) -> PoseResult:
        """Every face in one image (as :meth:`__call__`), best score first."""
        return self(image_bgr)

    def predict_batch(self, images: Iterable[np.ndarray]) -> list[PoseResult]:
        """:meth:`predict` for several images, with a single pose-model call for all their faces."""
        return self._results([("array", 0, None, im) for im in images])

    def predict_many(self, frames: Iterable[np.ndarray], batch: int = 16,
                     workers: int | None = None) -> Iterator[PoseResult]:
        """Faces of a stream of frames (a generator is fine), yielded per frame in input order, untracked.

        Pose runs once per ``batch`` frames; ``workers`` threads detect and crop (default ``threads``, or 1).
        """
        items = ((("frames", i, None), f) for i, f in enumerate(frames))
        for tag, frame, poses, speed in self._pipeline(items, batch, workers):
            yield PoseResult(poses, *tag, frame, speed)

    def stream(self, source, batch: int = 16, workers: int | None = None, track: bool = True,
               smooth: bool = False, on_skip=None, exclude=None, fps: float | None = None,
               smooth_cutoff: float | None = None, smooth_beta: float | None = None) -> Iterator[PoseResult]:
        """A :class:`PoseResult` per image or frame of ``source``: an image or video file, a folder (images,
        then videos), a webcam index, a BGR array or an iterable of BGR arrays (see :mod:`headpose.sources`).

        ``batch``: frames per pose-model call (a webcam always runs frame by frame, without latency);
        ``workers``: detection threads (default ``threads``, or 1). ``track``: give the faces of a video a stable
        ``track`` id (:class:`headpose.track.FaceTracker`); ``smooth``: also One-Euro-filter their angles
        (``smooth_cutoff`` Hz at rest, ``smooth_beta`` speed coefficient; defaults
        :data:`headpose.track.MIN_CUTOFF`, :data:`headpose.track.BETA`). ``on_skip(name, reason)`` hears of
        unreadable files inside a folder (by default they are skipped silently); ``exclude``: a folder to leave
        out (our own output inside the source). ``fps``: frame rate of in-memory frames (default 30).
        """
        from headpose.sources import DEFAULT_FPS, is_webcam, iter_frames
        from headpose.track import FaceTracker

        params = {k: v for k, v in (("min_cutoff", smooth_cutoff), ("beta", smooth_beta)) if v is not None}
        live = is_webcam(source)
        frames = iter_frames(source, on_skip=on_skip, exclude=exclude, fps=fps or DEFAULT_FPS)
        items = ((fr, fr.image) for fr in frames)
        tracker, current = None, None
        for fr, image, poses, speed in self._pipeline(items, 1 if live else batch, 1 if live else workers):
            if fr.video and (track or smooth):
                if fr.source != current or fr.index == 0:
                    tracker = FaceTracker(smooth=smooth, **params)
                    current = fr.source
                poses = tracker.update(poses, fr.index, fr.time_s)
            yield PoseResult(poses, fr.source, fr.index, fr.time_s, image, speed, fr.fps, fr.total)

    def _results(self, items: list[tuple]) -> list[PoseResult]:
        """(source, frame, time_s, image) items → their PoseResults, with one pose-model call for all."""
        pairs = (((src, i, t), img) for src, i, t, img in items)
        return [PoseResult(poses, *tag, image, speed)
                for tag, image, poses, speed in self._pipeline(pairs, batch=max(1, len(items)), workers=1)]

    def _pipeline(self, items: Iterable[tuple], batch: int = 16, workers: int | None = None):
        """(tag, frame) items → (tag, frame, poses, speed), in order. The frames are pulled on the calling
        thread; with ``workers`` > 1 detection runs ahead in threads while this thread runs the pose model."""
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
        poses, pose_ms = self._finish(found)
        for (tag, frame, _), p, f in zip(chunk, poses, found):
            yield tag, frame, p, {"detect": f[2], "pose": pose_ms}
