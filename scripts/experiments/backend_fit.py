"""Training-step samples/s of SSR-Net-MT on in-memory batches, on whichever Keras backend is selected.

The one-off measurements in docs/product.md ("What did not help") came from this script:

    KERAS_BACKEND=tensorflow python scripts/experiments/backend_fit.py --batch 128 --precision bfloat16
    KERAS_BACKEND=torch python scripts/experiments/backend_fit.py --batch 128      # needs torch==2.13.0
    KERAS_BACKEND=jax python scripts/experiments/backend_fit.py --batch 128        # needs jax
    python scripts/experiments/backend_fit.py --tf-default-threads                  # TensorFlow's own threads

On TensorFlow it trains as ``headpose train`` does (fused batch norm, one core per stream) unless told not to.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--keras-bn", action="store_true", help="TensorFlow: Keras' own batch norm, not the fused one")
    p.add_argument("--tf-default-threads", action="store_true", help="TensorFlow: its default thread settings")
    p.add_argument("--steps-per-execution", type=int, default=1)
    p.add_argument("--xla", action="store_true")
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from headpose import train as tr
    from headpose.model import build_model

    if not a.tf_default_threads:
        tr.set_training_threads(keras)
    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(2)
    model = build_model(precision=a.precision, width=a.width)
    if not a.keras_bn:
        tr.fuse_batchnorm(keras, model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae", jit_compile=a.xla,
                  steps_per_execution=a.steps_per_execution)
    rng = np.random.default_rng(0)
    n = a.batch * a.steps
    x = rng.uniform(0, 255, (n, 64, 64, 3)).astype(np.float32)
    y = rng.uniform(-50, 50, (n, 3)).astype(np.float32)
    model.fit(x[: 3 * a.batch], y[: 3 * a.batch], batch_size=a.batch, epochs=1, verbose=0)  # trace, warm up
    t, c = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=a.batch, epochs=1, verbose=0)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"{keras.backend.backend()} batch {a.batch} {a.precision} width {a.width:g}: "
          f"{n / wall:.0f} samples/s wall, {n / cpu:.0f} per CPU-second")


if __name__ == "__main__":
    main()
