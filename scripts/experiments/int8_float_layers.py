"""Which layers the int8 export keeps in float (``export.FLOAT_LAYERS``), measured on the selection data only:
for each choice, the int8 file's mean |int8 - float| (one pass) on AFLW2000 half a, aflw_wild p13 and BIWI 02 14,
and the share of the network's multiply-adds left in float; then the shipped choice with other calibration crops.

    python scripts/experiments/int8_float_layers.py            # the lite model (default)
    python scripts/experiments/int8_float_layers.py full
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from headpose.data.npz import load_npz  # noqa: E402
from headpose.export import FLOAT_LAYERS, FLOAT_LAYERS_NARROW, float_layer_re, float_layers_for, to_tflite  # noqa: E402
from headpose.model import load_model  # noqa: E402
from headpose.runtime import open_model, prepare_input, resolve_model  # noqa: E402

DATA = Path("runs/data")
SELECTION = ("aflw2000_a", "wild_select", "biwi_select")
HEADS = FLOAT_LAYERS[1:]
CHOICES = {"every layer int8": (), "first block": (r"[sx]_(sep|bn|act)1",),
           "first block + heads": (r"[sx]_(sep|bn|act)1",) + HEADS, "two blocks + heads (full)": FLOAT_LAYERS,
           "three blocks + heads (lite)": FLOAT_LAYERS_NARROW}


def evenly(name: str, n: int) -> np.ndarray:
    x, _ = load_npz(DATA / f"{name}.npz")
    return prepare_input(np.asarray(x[np.linspace(0, len(x) - 1, min(n, len(x))).astype(int)]), 3, 64)


def float_share(model, patterns) -> float:
    """Share of the multiply-adds of the convolutions and dense layers whose layer matches ``patterns``."""
    import keras

    layer = float_layer_re(patterns)
    total = kept = 0
    for lay in model.layers:
        if not isinstance(lay, (keras.layers.SeparableConv2D, keras.layers.Conv2D, keras.layers.Dense)):
            continue
        i, o = lay.input.shape[-1], lay.output.shape
        if isinstance(lay, keras.layers.SeparableConv2D):
            macs = o[1] * o[2] * (9 * i + i * o[-1])
        elif isinstance(lay, keras.layers.Conv2D):
            macs = o[1] * o[2] * lay.kernel_size[0] * lay.kernel_size[1] * i * o[-1]
        else:
            macs = i * o[-1]
        total += macs
        kept += macs if layer is not None and layer.match(lay.name) else 0
    return kept / total


def main(which: str = "lite") -> None:
    path = resolve_model(which)
    model = load_model(path.with_suffix(".keras"))
    sets = {s: load_npz(DATA / f"{s}.npz")[0] for s in SELECTION}
    ref = {s: open_model(path, flip=False)(x) for s, x in sets.items()}
    calibs = {"calib_mix, 200": evenly("calib_mix", 200), "calib_mix, 400": evenly("calib_mix", 400),
              "+ p13, 600": np.concatenate([evenly(s, 200) for s in SELECTION])}
    runs = [(name, pats, "calib_mix, 200") for name, pats in CHOICES.items()]
    runs += [("shipped (float_layers_for)", float_layers_for(model), c) for c in list(calibs)[1:]]
    print(f"{path.name}, one pass; drift on {' / '.join(SELECTION)}")
    with tempfile.TemporaryDirectory() as d:
        for name, pats, calib in runs:
            f = Path(d) / "m.tflite"
            f.write_bytes(to_tflite(model, int8=True, calib_images=calibs[calib], float_layers=pats))
            q = open_model(f, flip=False)
            drift = " / ".join(f"{np.abs(q(x) - ref[s]).mean():.2f}" for s, x in sets.items())
            print(f"{name:30s} calibration {calib:15s} drift {drift}°  float share {float_share(model, pats):.0%}"
                  f"  {f.stat().st_size // 1024} KiB", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
