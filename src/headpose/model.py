"""SSR-Net-MT: the soft stagewise regression network for head pose (SSR-Net / FSA-Net), in Keras 3.

Two streams of seven 3×3 separable convolutions (ReLU + average pooling / tanh + max pooling), three stages
reading the last conv output, the 3rd and the 2nd pooling, each with delta, local-shift and stage-probability
heads, fused by soft stagewise regression (``SSRFusion``) and scaled by V = 99. Input: a face crop, BGR 0..255
(or grayscale); output [yaw, pitch, roll] in degrees. Only builtin ops: converts to TFLite without custom ops.

Backend-neutral Keras 3 (no TensorFlow import here).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from headpose.errors import HeadposeError

V = 99.0
CHANNELS = (16, 32, 32, 64, 64, 128, 128)
POOL_AFTER = (0, 2, 4)  # pooling after the 1st, 3rd and 5th conv
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # --precision → Keras dtype policy of the streams


@keras.saving.register_keras_serializable(package="headpose")
class SSRFusion(layers.Layer):
    """Soft stagewise regression: fuse per-stage probabilities, deltas and local shifts into angles.

    Inputs: [p1, p2, p3] (each N×3×s_k, stage probabilities per angle), [d1, d2, d3] (N×3, range deltas),
    [l1, l2, l3] (N×3, local shifts). For stage k with s_k bins, the bin centres are (i - s_k//2 + l_k) and
    the stage's width divides by s_k·(1 + lambda_d·d_k), compounding over stages; the sum × V is the angle.
    """

    def __init__(self, stage_num=(3, 3, 3), lambda_d=1.0, v=V, **kwargs):
        super().__init__(**kwargs)
        self.stage_num = tuple(int(s) for s in stage_num)
        self.lambda_d = float(lambda_d)
        self.v = float(v)

    def call(self, inputs):
        probs, deltas, locals_ = inputs[0:3], inputs[3:6], inputs[6:9]
        out = 0.0
        width = 1.0
        for s, p, d, loc in zip(self.stage_num, probs, deltas, locals_):
            width = width * (s * (1.0 + self.lambda_d * d))
            # bins i - s//2 + local shift, weighted by probabilities p[..., i]
            idx = ops.arange(s, dtype=p.dtype) - float(s // 2)
            centre = ops.expand_dims(loc, -1) + idx  # N×3×s
            out = out + ops.sum(centre * p, axis=-1) / width
        return out * self.v

    def compute_output_shape(self, input_shapes):
        return input_shapes[3]

    def get_config(self):
        return {**super().get_config(), "stage_num": list(self.stage_num), "lambda_d": self.lambda_d, "v": self.v}


@keras.saving.register_keras_serializable(package="headpose")
def masked_mae(y_true, y_pred):
    """Mean absolute error over the known angles only: NaN in ``y_true`` marks an unknown angle (e.g. pitch
    and roll of an ``aflw_wild`` face near profile) and adds nothing to the loss or its gradient. With no NaN
    it equals Keras' ``"mae"``."""
    known = ops.logical_not(ops.isnan(y_true))
    err = ops.where(known, ops.abs(y_pred - ops.where(known, y_true, 0.0)), 0.0)
    per_sample = ops.sum(err, axis=-1) / ops.maximum(ops.sum(ops.cast(known, err.dtype), axis=-1), 1.0)
    return per_sample


def _scaled(channels: int, width: float) -> int:
    """``channels`` × ``width`` in a multiple of 4 (at least 4)."""
    return max(4, int(round(channels * width / 4)) * 4)


def stream_channels(width: float = 1.0) -> tuple[int, ...]:
    """Output channels of the seven separable convolutions of a stream: the original's × ``width``."""
    return tuple(_scaled(c, width) for c in CHANNELS)


def dtype_policy(precision: str) -> str:
    """The Keras dtype policy of the conv streams for ``--precision``; a clear error for an unknown one."""
    if precision not in PRECISIONS:
        raise HeadposeError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    return PRECISIONS[precision]


def _stream(x, act: str, pool, prefix: str, bn_momentum: float, dtype: str, width: float):
    """One conv stream; returns the outputs after pools 1, 2, 3 and the last conv."""
    taps = []
    for i, ch in enumerate(stream_channels(width)):
        x = layers.SeparableConv2D(ch, 3, padding="same", name=f"{prefix}_sep{i + 1}", dtype=dtype)(x)
        x = layers.BatchNormalization(axis=-1, momentum=bn_momentum, name=f"{prefix}_bn{i + 1}", dtype=dtype)(x)
        x = layers.Activation(act, name=f"{prefix}_act{i + 1}", dtype=dtype)(x)
        if i in POOL_AFTER:
            x = pool(2, name=f"{prefix}_pool{len(taps) + 1}", dtype=dtype)(x)
            taps.append(x)
    taps.append(x)
    return taps  # [layer1, layer2, layer3, layer4]


def stream_layers(model: keras.Model) -> list:
    """The layers of the two conv streams (separable convs and their batch norms, ``x_*`` and ``s_*``): the
    feature extractor, as opposed to the stage heads (1×1 convs, dense layers) and the fusion."""
    return [layer for layer in model.layers if re.fullmatch(r"[xs]_(sep|bn)\d+", layer.name)]


def freeze_streams(model: keras.Model) -> int:
    """Freeze the two conv streams of ``model`` (:func:`stream_layers`): their weights stop training and their
    batch norms run on their moving statistics, so only the stage heads learn. Call before ``compile``.
    Returns the number of weights frozen."""
    frozen = stream_layers(model)
    if not frozen:
        raise HeadposeError(f"{model.name}: no conv-stream layers (x_sep1 ...) to freeze")
    for layer in frozen:
        layer.trainable = False
    return sum(int(np.prod(w.shape)) for layer in frozen for w in layer.weights)


def build_model(img_size: int = 64, channels: int = 3, stage_num=(3, 3, 3), lambda_d: float = 1.0,
                bn_momentum: float = 0.99, name: str = "ssrnet_mt", precision: str = "float32",
                width: float = 1.0) -> keras.Model:
    """SSR-Net-MT as the original project and FSA-Net define it; 3 outputs [yaw, pitch, roll].

    ``bn_momentum`` only changes how fast BatchNormalization's moving statistics follow training (0.99 as the
    original); the inference graph and weight layout are the same for any value.
    ``precision="bfloat16"``: the two conv streams compute in bfloat16 (Keras' ``mixed_bfloat16`` policy:
    weights stay float32), the stage heads and the fusion in float32 — for faster training on CPUs with bf16
    instructions. Inference and export use float32 (``to_float32``).
    ``width`` scales the channels of both streams and of the stage heads' 1×1 convolutions (1.0: the original;
    0.5: a lighter variant, about 3× fewer multiply-adds; everything else — three stages, stage_num, lambda_d,
    V — unchanged).
    """
    if not 0.1 <= width <= 4:
        raise HeadposeError(f"width must be between 0.1 and 4, got {width}")
    dtype = dtype_policy(precision)
    if img_size % 16:
        raise HeadposeError(f"image size must be a multiple of 16, got {img_size}")
    stage_num = tuple(int(s) for s in stage_num)
    n_out = 3
    inp = keras.Input((img_size, img_size, channels), name="image")
    x1, x2, x3, x4 = _stream(inp, "relu", layers.AveragePooling2D, "x", bn_momentum, dtype, width)
    s1, s2, s3, s4 = _stream(inp, "tanh", layers.MaxPooling2D, "s", bn_momentum, dtype, width)
    head = _scaled(64, width)

    probs, deltas, locs = [], [], []
    # Stage 1 reads the last conv output, stage 2 the 3rd pooling, stage 3 the 2nd pooling.
    for k, (xs, ss) in enumerate(((x4, s4), (x3, s3), (x2, s2)), start=1):
        s = layers.Conv2D(head, 1, activation="tanh", name=f"stage{k}_s_conv")(ss)
        s = layers.MaxPooling2D(2, name=f"stage{k}_s_pool")(s)
        x = layers.Conv2D(head, 1, activation="relu", name=f"stage{k}_x_conv")(xs)
        x = layers.AveragePooling2D(2, name=f"stage{k}_x_pool")(x)
        f = layers.Flatten(name=f"stage{k}_flatten")(layers.Multiply(name=f"stage{k}_mul")([s, x]))
        fd = layers.Dense(2 * n_out, activation="tanh", name=f"stage{k}_delta_feat")(f)
        deltas.append(layers.Dense(n_out, activation="tanh", name=f"delta_s{k}")(fd))
        fl = layers.Dense(2 * n_out, activation="tanh", name=f"stage{k}_local_feat")(f)
        locs.append(layers.Dense(n_out, activation="tanh", name=f"local_delta_stage{k}")(fl))
        fp = layers.Dense(stage_num[k - 1] * n_out, activation="relu", name=f"stage{k}_pred")(f)
        probs.append(layers.Reshape((n_out, stage_num[k - 1]), name=f"stage{k}_reshape")(fp))
    out = SSRFusion(stage_num, lambda_d, name="pred_pose")(probs + deltas + locs)
    return keras.Model(inp, out, name=name)


def to_float32(model: keras.Model) -> keras.Model:
    """``model`` itself if it computes in float32 throughout, else the same network with every layer in float32
    and its weights (a model trained with ``precision="bfloat16"``: its weights are float32 already)."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def as_float32(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    twin = keras.models.clone_model(model, clone_function=as_float32)
    for layer in twin.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return twin


def model_width(model: keras.Model) -> float:
    """The ``width`` an SSR-Net-MT was built with, to 1/32 (from its widest convolution's channels)."""
    return model.get_layer("x_sep7").filters / CHANNELS[-1]


def legacy_h5_layer_map() -> dict[str, str]:
    """Our layer names → the layer names in the original project's / FSA-Net's Keras 2 ``.h5``.

    Keras 2 numbered layers in creation order: stream x (ReLU) convs 1-7, stream s (tanh) 8-14; per stage the
    s-stream 1×1 conv before the x-stream one; per stage dense delta-feature, local-feature, probabilities.
    """
    m = {}
    for i in range(7):
        m[f"x_sep{i + 1}"] = f"separable_conv2d_{i + 1}"
        m[f"x_bn{i + 1}"] = f"batch_normalization_{i + 1}"
        m[f"s_sep{i + 1}"] = f"separable_conv2d_{i + 8}"
        m[f"s_bn{i + 1}"] = f"batch_normalization_{i + 8}"
    for k in range(1, 4):
        m[f"stage{k}_s_conv"] = f"conv2d_{2 * k - 1}"
        m[f"stage{k}_x_conv"] = f"conv2d_{2 * k}"
        m[f"stage{k}_delta_feat"] = f"dense_{3 * k - 2}"
        m[f"stage{k}_local_feat"] = f"dense_{3 * k - 1}"
        m[f"stage{k}_pred"] = f"dense_{3 * k}"
        m[f"delta_s{k}"] = f"delta_s{k}"
        m[f"local_delta_stage{k}"] = f"local_delta_stage{k}"
    return m


_WEIGHT_ORDER = {
    "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "Conv2D": ("kernel", "bias"),
    "Dense": ("kernel", "bias"),
}


def load_legacy_h5(model: keras.Model, path: str | os.PathLike) -> keras.Model:
    """Load the Keras 2 ``.h5`` weights that the original project and FSA-Net release into ``model``."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise HeadposeError(f"{path}: not an HDF5 weights file ({e})") from None
    with f:
        g = f["model_weights"] if "model_weights" in f else f
        mapping = legacy_h5_layer_map()
        for layer in model.layers:
            if layer.name not in mapping:
                continue
            src = mapping[layer.name]
            if src not in g:
                raise HeadposeError(f"{path}: no weights for layer '{src}': not an SSR-Net-MT weights file")
            grp = g[src]
            names = {k.split("/")[-1].split(":")[0]: grp[k] for k in _walk(grp)}
            order = _WEIGHT_ORDER[type(layer).__name__]
            try:
                values = [names[n][()] for n in order]
                layer.set_weights(values)
            except (KeyError, ValueError) as e:
                raise HeadposeError(f"{path}: layer '{src}' does not match SSR-Net-MT ({e})") from None
    return model


def _walk(grp, prefix=""):
    import h5py

    for k, v in grp.items():
        if isinstance(v, h5py.Dataset):
            yield prefix + k
        else:
            yield from _walk(v, prefix + k + "/")


def _h5_input_shape(path: Path) -> tuple[int, int]:
    """(image size, channels) of a legacy .h5 from its first depthwise kernel and model config if present."""
    import h5py

    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        if "separable_conv2d_1" not in g:
            raise HeadposeError(f"{path}: no 'separable_conv2d_1' weights: not an SSR-Net-MT weights file")
        grp = g["separable_conv2d_1"]
        dw = next(grp[k] for k in _walk(grp) if "depthwise_kernel" in k)
        channels = int(dw.shape[2])
        dense7 = next(g["dense_7"][k] for k in _walk(g["dense_7"]) if "kernel" in k)
        # stage 3 reads the 2nd pooling (size/4) pooled once more: (size/8)² × 64 features
        size = int(round((dense7.shape[0] / 64) ** 0.5)) * 8
    return size, channels


def load_model(path: str | os.PathLike) -> keras.Model:
    """A ``.keras`` model saved by headpose, legacy ``.h5`` weights (architecture rebuilt), or a bundled model's name
    (``full``, ``lite``: its ``.keras`` file in the package, :func:`headpose.runtime.resolve_keras`)."""
    from headpose.runtime import resolve_keras

    path = resolve_keras(path)
    if not path.exists():
        raise HeadposeError(f"{path}: no such model file")
    ext = path.suffix.lower()
    if ext == ".keras":
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as e:
            raise HeadposeError(f"{path}: not a loadable .keras model ({type(e).__name__}: {e})") from None
        return to_float32(model)
    if ext == ".h5":
        size, channels = _h5_input_shape(path)
        return load_legacy_h5(build_model(size, channels), path)
    raise HeadposeError(f"{path}: a Keras model must be .keras or .h5, got '{ext}'")
