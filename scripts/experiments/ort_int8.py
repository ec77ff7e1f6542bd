"""ONNX Runtime on the bundled full model: float against static int8 (QDQ and QOperator, per-channel,
calibrated on every other of the first 400 crops of the file), 1 thread, batch 1; drift from float and
MAE on crops 200-399.

    python scripts/experiments/ort_int8.py runs/data/biwi_test.npz
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from headpose.data.npz import load_npz
from headpose.runtime import WEIGHTS


def run(path, x):
    o = ort.SessionOptions()
    o.intra_op_num_threads = o.inter_op_num_threads = 1
    s = ort.InferenceSession(str(path), o)
    name = s.get_inputs()[0].name
    for _ in range(100):
        s.run(None, {name: x[:1]})
    t, n = time.perf_counter(), 1500
    for _ in range(n):
        s.run(None, {name: x[:1]})
    rate = n / (time.perf_counter() - t)
    return rate, np.concatenate([s.run(None, {name: x[i : i + 1]})[0] for i in range(200, 400)])


def main():
    img, pose = load_npz(sys.argv[1])
    x, y = img[:400].astype(np.float32), pose[200:400]
    src = WEIGHTS / "headpose_ssrnet_mt.onnx"
    name = ort.InferenceSession(str(src)).get_inputs()[0].name

    class Calib(CalibrationDataReader):
        def __init__(self):
            self.it = iter(x[::2])  # every other of the first 400 crops

        def get_next(self):
            v = next(self.it, None)
            return None if v is None else {name: v[None]}

    r0, p0 = run(src, x)
    print(f"float: {r0:.0f} crops/s, MAE {np.abs(p0 - y).mean():.2f}")
    with tempfile.TemporaryDirectory() as d:
        pre = Path(d) / "pre.onnx"
        quant_pre_process(str(src), str(pre))
        for fmt, act in ((QuantFormat.QDQ, QuantType.QInt8), (QuantFormat.QOperator, QuantType.QUInt8)):
            out = Path(d) / f"{fmt.name}.onnx"
            quantize_static(str(pre), str(out), Calib(), quant_format=fmt, per_channel=True, activation_type=act,
                            weight_type=QuantType.QInt8)
            r, p = run(out, x)
            drift, mae = np.abs(p - p0).mean(), np.abs(p - y).mean()
            print(f"{fmt.name} int8: {r:.0f} crops/s, drift {drift:.2f}, MAE {mae:.2f}")


if __name__ == "__main__":
    main()
