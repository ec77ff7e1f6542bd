"""Where a training step's time goes: TensorFlow profiler, kernel time per op type (summed over threads).

    python scripts/experiments/train_profile.py [--batch 128] [--precision float32] [--keras-bn]

The breakdown in docs/product.md ("Where the time goes") is this at batch 128, float32, fused batch norm.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import tempfile
import time

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--keras-bn", action="store_true")
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from headpose import train as tr
    from headpose.model import build_model

    tr.set_training_threads(keras)
    model = build_model(precision=a.precision)
    if not a.keras_bn:
        tr.fuse_batchnorm(keras, model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
    rng = np.random.default_rng(0)
    n = a.batch * a.steps
    x = rng.uniform(0, 255, (n, 64, 64, 3)).astype(np.float32)
    y = rng.uniform(-50, 50, (n, 3)).astype(np.float32)
    model.fit(x, y, batch_size=a.batch, epochs=1, verbose=0)
    with tempfile.TemporaryDirectory() as d:
        tf.profiler.experimental.start(d)
        t = time.perf_counter()
        model.fit(x, y, batch_size=a.batch, epochs=1, verbose=0)
        step_ms = (time.perf_counter() - t) / a.steps * 1000
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        with open(glob.glob(f"{d}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
            space.ParseFromString(f.read())
    by_op = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = names.get(ev.metadata_id, "")
                if ":" in name:  # "model/layer/...:OpType"
                    by_op[name.split(":")[-1]] += ev.duration_ps / 1e9 / a.steps
    print(f"step {step_ms:.0f} ms wall; kernel ms per step, summed over threads:")
    for op, ms in by_op.most_common(25):
        print(f"  {ms:8.2f}  {op}")


if __name__ == "__main__":
    main()
