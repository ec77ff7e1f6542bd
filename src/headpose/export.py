"""``headpose export``: a trained model to float TFLite, int8 TFLite or ONNX, checked against Keras after writing.

All graphs take a dynamic batch of BGR crops (float32 0..255) and return float32 N×3 [yaw, pitch, roll] in
degrees; the int8 model quantises inside (convolutions and dense layers int8, except ``float_layers_for(model)``;
the fusion float).
Builtin TFLite ops only: the file runs in LiteRT on phones without custom ops or Flex delegates.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from headpose.errors import HeadposeError
from headpose.io import atomic_path, writable_file

FORMATS = ("tflite", "tflite-int8", "onnx")


def _calibration_crops(calib, size: int, channels: int, n: int) -> tuple[np.ndarray, str]:
    from headpose.data.npz import load_npz
    from headpose.runtime import prepare_input

    if calib is None:
        rng = np.random.default_rng(0)
        return rng.uniform(0, 255, (n, size, size, channels)).astype(np.float32), "random images"
    images, _ = load_npz(calib, unlabelled=True)  # calibration needs crops, not labels
    if not len(images):
        raise HeadposeError(f"{calib}: no crops to calibrate or check on (an empty set)")
    idx = np.linspace(0, len(images) - 1, min(n, len(images))).astype(int)
    return prepare_input(np.asarray(images[idx]), channels, size), f"{len(idx)} crops of {calib}"


def _spec(model):
    import tensorflow as tf

    shape = model.input_shape
    return tf.TensorSpec([None, shape[1], shape[2], shape[3]], tf.float32, name="image")


def _converter(model, workdir: Path):
    """A TFLite converter from a SavedModel export (variables frozen, dynamic batch), made once in ``workdir``."""
    import tensorflow as tf

    saved = workdir / "saved_model"
    if not saved.exists():
        model.export(str(saved), format="tf_saved_model", input_signature=[_spec(model)], verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(str(saved))


# Ops left in float in the int8 model: the soft stagewise fusion (sums, products and divisions of bin
# probabilities, shifts and widths) and the two-stream product. Quantising them doubled the drift from float.
FLOAT_OPS = ["DIV", "SUM", "MUL", "ADD", "SUB"]
# Layers (of headpose.model's network, by name) left in float too: the first two separable blocks of each stream,
# at 64×64 and 32×32, and each stage's small dense heads. Every int8 layer adds its rounding noise (the quantiser's
# per-layer statistics put each near the 1/√12 of a uniform rounding); these are where it costs the most degrees.
# Lite model, one pass, selection data (AFLW2000 half a / aflw_wild p13 / BIWI 02 14): mean |int8 - float|
# 0.61 / 0.67 / 0.62° all int8, 0.46 / 0.46 / 0.42° with these float (the first block alone: 0.51 / 0.55 / 0.49;
# python scripts/experiments/int8_float_layers.py).
FLOAT_LAYERS = (r"[sx]_(sep|bn|act)[12]", r"stage\d_(delta_feat|local_feat|pred|flatten)", r"delta_s\d",
                r"local_delta_stage\d")
# Narrower networks (width < 1: the lite model) keep the third block of each stream (16×16) in float too: their
# fewer channels round coarser. Session 9's lite weights, same data: 0.52 / 0.46 / 0.45° with FLOAT_LAYERS,
# 0.44 / 0.40 / 0.41° with these (40% of the lite model's multiply-adds in float instead of 21%).
FLOAT_LAYERS_NARROW = (r"[sx]_(sep|bn|act)[123]",) + FLOAT_LAYERS[1:]


def float_layers_for(model) -> tuple[str, ...]:
    """The layers an int8 export of ``model`` keeps in float: ``FLOAT_LAYERS``, or ``FLOAT_LAYERS_NARROW`` for
    a network narrower than the original (``width`` < 1)."""
    from headpose.model import model_width

    return FLOAT_LAYERS_NARROW if model_width(model) < 1 else FLOAT_LAYERS


def float_nodes(tensor_names: list[str], patterns=FLOAT_LAYERS) -> list[str]:
    """The tensors (TFLite names: ``;``-joined paths of the fused ops, ``model_1/layer_1/op``) that belong to a
    layer named by ``patterns`` (regular expressions on the Keras layer name; converters append ``_N``)."""
    layer = float_layer_re(patterns)
    if layer is None:
        return []
    return [n for n in tensor_names if any(layer.match(part) for op in n.split(";") for part in op.split("/"))]


def float_layer_re(patterns=FLOAT_LAYERS) -> re.Pattern | None:
    """A Keras layer name (or a converter's ``NAME_N``) that matches one of ``patterns``; None for no patterns."""
    return re.compile(rf"^(?:{'|'.join(patterns)})(?:_\d+)?$") if patterns else None


def to_tflite(model, int8: bool = False, calib_images: np.ndarray | None = None,
              float_layers=None) -> bytes:
    """Float TFLite, or int8 (weights and activations of the convolutions and dense layers; the fusion ops in
    ``FLOAT_OPS`` and the layers matching ``float_layers`` (default ``float_layers_for(model)``) stay float;
    float input and output)."""
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as d:
        conv = _converter(model, Path(d))
        if not int8:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            return conv.convert()
        if calib_images is None or len(calib_images) == 0:
            raise HeadposeError("int8 export needs representative crops: --calib X.npz")
        if float_layers is None:
            float_layers = float_layers_for(model)

        def rep():
            for i in range(len(calib_images)):
                yield [calib_images[i : i + 1]]

        from headpose.runtime import load_litert

        plain = Path(d) / "float.tflite"
        plain.write_bytes(conv.convert())
        names = [t["name"] for t in load_litert(plain).get_tensor_details()]
        conv = _converter(model, Path(d))  # a fresh converter of the same export
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=FLOAT_OPS,
                                                                denylisted_nodes=float_nodes(names, float_layers))
        debugger = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=rep, debug_options=options)
        return debugger.get_nondebug_quantized_model()


def to_onnx(model, opset: int = 17) -> bytes:
    try:
        import tf2onnx
    except ImportError:
        raise HeadposeError("ONNX export needs tf2onnx: pip install 'headpose-ssr[train]'") from None
    import tensorflow as tf

    fn = tf.function(lambda image: model(image, training=False))
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=[_spec(model)], opset=opset)
    return proto.SerializeToString()


def export(model_path, fmt: str, out, calib=None, quiet: bool = False) -> dict:
    """Write ``model_path`` as ``fmt`` to ``out`` (atomically), then run the written file on crops and compare
    with the Keras model. Returns {"path", "bytes", "max_diff", "mean_diff", "n", "checked_on"}."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if fmt not in FORMATS:
        raise HeadposeError(f"unknown export format '{fmt}' (expected one of {', '.join(FORMATS)})")
    from headpose.model import load_model
    from headpose.runtime import open_model

    out = Path(out)
    suffix = ".onnx" if fmt == "onnx" else ".tflite"
    if out.suffix.lower() != suffix:
        raise HeadposeError(f"--out {out}: --format {fmt} writes a {suffix} file "
                            f"(name it {out.with_suffix(suffix).name})")
    writable_file(out, f"--out {out}", "model" + suffix)
    if fmt == "tflite-int8" and calib is None:
        raise HeadposeError("int8 export needs representative crops: --calib X.npz (labels not needed)")
    model = load_model(model_path)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    check, what = _calibration_crops(calib, size, channels, 200)
    if fmt == "onnx":
        blob = to_onnx(model)
    else:
        blob = to_tflite(model, int8=fmt == "tflite-int8", calib_images=check)

    ref = np.asarray(model.predict(check, batch_size=256, verbose=0))
    with atomic_path(out) as tmp:  # checked under its temp name: a file that fails the check is never left
        tmp.write_bytes(blob)
        got = open_model(tmp, flip=False)(check)  # the file alone: not mirror-averaged, whatever a card says
    diff = np.abs(got - ref)
    res = {"path": str(out), "bytes": len(blob), "max_diff": float(diff.max()), "mean_diff": float(diff.mean()),
           "n": len(check), "checked_on": what}
    if not quiet:
        print(f"wrote {out} ({len(blob) / 1024:.0f} KiB, {fmt})")
        print(f"vs Keras on {what}: max |Δ| {res['max_diff']:.4f}°, mean |Δ| {res['mean_diff']:.4f}°")
    return res
