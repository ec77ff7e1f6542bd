"""Run a pose model file in its natural runtime, batched.

``.tflite`` → LiteRT (``ai-edge-litert``), ``.onnx`` → ONNX Runtime, ``.keras`` / ``.h5`` → Keras.
Only the Keras path imports TensorFlow, and only when such a file is opened.
Every runner maps uint8/float BGR crops N×S×S×C (0..255) to float32 N×3 [yaw, pitch, roll] in degrees.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from headpose.errors import HeadposeError
from headpose.geometry import flip_ypr

FORMATS = (".tflite", ".onnx", ".keras", ".h5")
INT8_SUFFIX = "_int8"  # MODEL_int8.tflite: the int8 sibling of MODEL.tflite (headpose export --int8)
WEIGHTS = Path(__file__).resolve().parent / "weights"
# Names of the bundled pose models (``--model lite``, ``HeadPoseEstimator(model="lite")``) → their files.
BUNDLED = {
    "full": "headpose_ssrnet_mt.tflite",  # SSR-Net-MT as the original (the default)
    "full-int8": "headpose_ssrnet_mt_int8.tflite",
    "lite": "headpose_ssrnet_mt_lite.tflite",  # the same network at half width: about 2× faster per crop
    "lite-int8": "headpose_ssrnet_mt_lite_int8.tflite",
}


def resolve_model(model: str | os.PathLike) -> Path:
    """The file of a bundled model name (``full``, ``lite``, ``full-int8``, ``lite-int8``), or ``model`` as a
    path. A bundled name whose file this installation lacks is a clear error."""
    name = str(model)
    if name in BUNDLED:
        path = WEIGHTS / BUNDLED[name]
        if not path.exists():
            raise HeadposeError(f"the bundled pose model {path} is missing from this installation; "
                                "give a model explicitly (--model M.tflite, or HeadPoseEstimator(model=...))")
        return path
    return Path(model)


def resolve_keras(model: str | os.PathLike) -> Path:
    """For the Keras side (``train --init``, ``export --model``, ``soup --model``): a bundled model's name
    (``full``, ``lite``) → its ``.keras`` file in the package, to fine-tune or export; a path as it is."""
    name = str(model)
    if name in ("full-int8", "lite-int8"):
        raise HeadposeError(f"{name}: an int8 TFLite file has no Keras weights; use {name[:-5]} (its float model)")
    if name in BUNDLED:
        path = resolve_model(name).with_suffix(".keras")
        if not path.exists():
            raise HeadposeError(f"{path}: the Keras weights of the bundled {name} model are missing from this "
                                "installation")
        return path
    return Path(model)


def load_litert(path: str | os.PathLike, threads: int | None = None):
    """A LiteRT interpreter for ``path`` (tensors not yet allocated)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        return Interpreter(model_path=str(path), num_threads=threads)
    except Exception as e:
        raise HeadposeError(f"{path}: not a loadable TFLite model ({e})") from None


class LiteRTRunner:
    """Batched LiteRT inference.

    Models exported with a dynamic batch run whole batches at once. Graphs with a fixed batch of 1 (the
    seed's ``.tflite`` has reshapes that cannot be resized) run one crop per invoke.
    """

    kind = "tflite"

    def __init__(self, path, threads: int | None = None):
        self.path = Path(path)
        self.threads = threads
        self.interp = self._fresh()
        inp = self.interp.get_input_details()
        out = self.interp.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise HeadposeError(f"{path}: expected one input and one output, got {len(inp)} and {len(out)}")
        shape = inp[0]["shape"]
        if len(shape) != 4 or shape[1] != shape[2]:
            raise HeadposeError(f"{path}: input shape {list(shape)} is not N×S×S×C: not a head-pose model")
        if tuple(out[0]["shape"][1:]) != (3,):
            raise HeadposeError(f"{path}: output shape {list(out[0]['shape'])} is not N×3: not a head-pose model")
        self.img_size = int(shape[1])
        self.channels = int(shape[3])
        self.dynamic_batch = int(inp[0]["shape_signature"][0]) == -1
        self._batch = -1
        self._set_batch(1)

    def _fresh(self):
        interp = load_litert(self.path, self.threads)
        interp.allocate_tensors()
        return interp

    def _set_batch(self, n: int):
        if n != self._batch:
            index = self.interp.get_input_details()[0]["index"]
            if n != int(self.interp.get_input_details()[0]["shape"][0]):
                self.interp.resize_tensor_input(index, [n, self.img_size, self.img_size, self.channels])
            self.interp.allocate_tensors()
            self._in = self.interp.get_input_details()[0]
            self._out = self.interp.get_output_details()[0]
            self._batch = n

    def _quant_in(self, x: np.ndarray) -> np.ndarray:
        dt = self._in["dtype"]
        if dt == np.float32:
            return x.astype(np.float32, copy=False)
        scale, zero = self._in["quantization"]
        return np.clip(np.round(x / scale + zero), np.iinfo(dt).min, np.iinfo(dt).max).astype(dt)

    def _dequant_out(self, y: np.ndarray) -> np.ndarray:
        if self._out["dtype"] == np.float32:
            return y
        scale, zero = self._out["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def __call__(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        x = np.asarray(x)
        out = np.empty((len(x), 3), np.float32)
        step = batch_size if self.dynamic_batch else 1
        for i in range(0, len(x), step):
            xb = x[i : i + step]
            self._set_batch(len(xb))
            self.interp.set_tensor(self._in["index"], self._quant_in(xb))
            self.interp.invoke()
            out[i : i + len(xb)] = self._dequant_out(self.interp.get_tensor(self._out["index"]))
        return out


class OnnxRunner:
    kind = "onnx"

    def __init__(self, path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise HeadposeError(f"{path}: running .onnx models needs onnxruntime (pip install onnxruntime)") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise HeadposeError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0]})") from None
        inp = self.sess.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        if len(shape) != 4:
            raise HeadposeError(f"{path}: input shape {shape} is not N×S×S×C: not a head-pose model")
        self.img_size = int(shape[1])
        self.channels = int(shape[3])

    def __call__(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return _batched(lambda b: self.sess.run(None, {self.input_name: b})[0], x, batch_size)


class KerasRunner:
    kind = "keras"

    def __init__(self, path, threads: int | None = None):
        try:
            from headpose.model import load_model  # imports keras: training extra
        except ImportError as e:
            raise HeadposeError(f"{path}: running .keras / .h5 models needs Keras and TensorFlow ({e.name} is not "
                                "installed): pip install 'headpose-ssr[train]', or use the model's .tflite") from None
        self.model = load_model(path)
        shape = self.model.input_shape
        self.img_size = int(shape[1])
        self.channels = int(shape[3])

    def __call__(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return _batched(lambda b: np.asarray(self.model(b, training=False)), x, batch_size)


def _batched(fn, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Run ``fn`` (float32 batch → N×3) over ``x`` in batches."""
    x = np.asarray(x)
    out = np.empty((len(x), 3), np.float32)
    for i in range(0, len(x), batch_size):
        out[i : i + batch_size] = fn(x[i : i + batch_size].astype(np.float32))
    return out


class FlipAverage:
    """Test-time mirror averaging around any runner: each crop and its mirror image are both read, and the
    mirror's answer, turned back (yaw and roll negated, pitch kept), is averaged with the crop's. Twice the pose
    compute; on the selection data (AFLW2000 half a, BIWI 02 14) it took 0.3-0.4° off the mean error."""

    def __init__(self, runner):
        self.runner = runner
        self.kind = runner.kind
        self.img_size = runner.img_size
        self.channels = runner.channels

    def __call__(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        x = np.asarray(x)
        n = len(x)
        both = self.runner(np.concatenate([x, x[:, :, ::-1]]), batch_size=batch_size)
        return (both[:n] + flip_ypr(both[n:])) / 2


def model_card(model_path) -> dict:
    """The ``MODEL.json`` beside a model file (training data, crop margin, mirror averaging, validation MAE), or
    {}. An int8 sibling (``MODEL_int8.tflite``) has its float model's card: it is that model, quantised."""
    path = Path(model_path)
    card = path.with_suffix(".json")
    if not card.exists() and path.stem.endswith(INT8_SUFFIX):
        card = path.with_name(path.stem[: -len(INT8_SUFFIX)] + ".json")
    if not card.exists():
        return {}
    try:
        return json.loads(card.read_text())
    except (OSError, ValueError) as e:
        raise HeadposeError(f"{card}: unreadable model card ({e})") from None


def default_flip(model_path, card: dict | None = None) -> bool:
    """Whether a model reads each crop with its mirror image by default: the ``flip`` of its card (the bundled
    full model: yes; the lite model, whose point is speed, and a model without a card: no). ``card``: the model's
    card when the caller has read it already."""
    return bool((model_card(model_path) if card is None else card).get("flip", False))


def open_model(path: str | os.PathLike, threads: int | None = None, flip: bool | None = None):
    """A callable runner for a model file (or a bundled model name), chosen by its extension; ``flip``: wrapped
    in :class:`FlipAverage` (``None``: as the model's card says, :func:`default_flip`)."""
    path = resolve_model(path)
    if flip is None:
        flip = default_flip(path)
    if flip:
        return FlipAverage(open_model(path, threads, flip=False))
    if not path.exists():
        raise HeadposeError(f"{path}: no such model file")
    ext = path.suffix.lower()
    if ext == ".tflite":
        return LiteRTRunner(path, threads)
    if ext == ".onnx":
        return OnnxRunner(path, threads)
    if ext in (".keras", ".h5"):
        return KerasRunner(path, threads)
    raise HeadposeError(f"{path}: unknown model format '{ext}' (expected one of {', '.join(FORMATS)})")


def prepare_input(crops, channels: int, size: int | None = None) -> np.ndarray:
    """Crops as the network expects them: float32 N×S×S×``channels``, BGR 0..255 (grayscale for 1-channel models;
    a grey crop is repeated in the 3 channels of a 3-channel model), each resized to ``size``×``size`` when given
    and different, by the project's one resize rule (:func:`headpose.detect.resize_square`).

    ``crops``: an array N×S×S×C or N×S×S (grey), one crop S×S×C or S×S, or a list of crops (S×S×C or S×S) of any
    sizes, each resized to ``size`` then stacked (an empty list gives an empty array N = 0). C is 1 or 3.
    Crops must be square (within :data:`SQUARE_TOLERANCE`, or a pixel): a :class:`HeadposeError` names the first
    that is not."""
    if isinstance(crops, (list, tuple)):
        crops = _stack_crops([_one_crop(c, i) for i, c in enumerate(crops)], channels, size)
    else:
        crops = np.asarray(crops)
        if crops.ndim == 2 or (crops.ndim == 3 and crops.shape[-1] in (1, 3)):
            crops = crops[None]  # one crop
        if crops.ndim == 3:
            crops = crops[..., None]  # N grey crops
        if crops.ndim != 4 or crops.shape[-1] not in (1, 3):
            raise HeadposeError(f"crops of shape {crops.shape}: expected N×S×S×C (C = 1 or 3), N×S×S, one crop "
                                "or a list of crops")
        if len(crops):
            _check_square(0, crops[0])
        if size is not None and len(crops) and crops.shape[1:3] != (size, size):
            crops = _stack_crops(list(crops), channels, size)
    if crops.shape[-1] == 3 and channels == 1:
        w = np.array([0.114, 0.587, 0.299], np.float32)  # BGR → luma, as cv2.COLOR_BGR2GRAY
        crops = (crops.astype(np.float32) @ w)[..., None]
    elif crops.shape[-1] == 1 and channels == 3:
        crops = np.repeat(crops, 3, axis=-1)  # grey: the same in B, G and R
    return crops.astype(np.float32, copy=False)


#: How far from square a given crop may be and still be read (stretched by the resize, as the dataset readers
#: stretch theirs): crops cut by other tools are often a pixel off (8% of BIWI's are 124×125).
SQUARE_TOLERANCE = 0.02


def _check_square(i: int, crop: np.ndarray):
    h, w = crop.shape[:2]
    if abs(h - w) > max(1.0, SQUARE_TOLERANCE * max(h, w)):
        raise HeadposeError(f"crop {i} is {w}×{h}: crops must be square; crop faces with headpose.detect.crop_face")


def _one_crop(crop, i: int) -> np.ndarray:
    """Crop ``i`` of a list as H×W×C (C = 1 or 3), checked square."""
    crop = np.asarray(crop)
    if crop.ndim == 2:
        crop = crop[..., None]
    if crop.ndim != 3 or crop.shape[-1] not in (1, 3):
        raise HeadposeError(f"crop {i} has shape {crop.shape}: expected S×S×C (C = 1 or 3) or S×S")
    _check_square(i, crop)
    return crop


def _stack_crops(crops: list[np.ndarray], channels: int, size: int | None) -> np.ndarray:
    """H×W×C crops (:func:`_one_crop`) resized to ``size`` and stacked; grey ones among colour ones repeated in 3
    channels."""
    from headpose.detect import resize_square

    if size is None:
        if len({c.shape[0] for c in crops}) > 1:
            raise HeadposeError("crops of different sizes: give the size to resize them to")
        size = crops[0].shape[0] if crops else 0
    if not crops:
        return np.zeros((0, size, size, channels), np.float32)
    c = max(crop.shape[-1] for crop in crops)
    return np.stack([np.repeat(resize_square(crop, size) if crop.shape[:2] != (size, size) else crop,
                               c // crop.shape[-1], -1)
                     for crop in crops])
