"""Re-estimate a model's batch-norm statistics on its training data (as SWA does after averaging weights): every
batch norm's moving mean and variance become the average of its batch statistics over ``--batches`` random
batches of 256, read in training mode. Session 14 tried it on the shipped lite model (a weight average whose
statistics are the average of its ingredients'); neither clean nor augmented batches helped (README, session 14).

    python scripts/experiments/bn_recalibrate.py runs/lite_cand/soup_s10_7d_8d.keras runs/bnrecal/lite_aug40.keras \\
        --batches 40 --augment
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# wild_lite_bL10d's data: the shipped lite model's last training mix
DATA = ("runs/data/wild_train.npz", "runs/data/biwi_train10.npz", "runs/data/biwi_train10.npz",
        "runs/data/wild_train_t10.npz", "runs/data/faces_t10.npz")


def recalibrate(src: str, out: str, batches: int, augment: bool, data=DATA, batch_size: int = 256) -> None:
    import keras

    from headpose.augment import augment_batch
    from headpose.model import load_model
    from headpose.train import ArraySet

    train = ArraySet(list(data))
    model = load_model(src)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    rng = np.random.default_rng(0)
    for k in range(batches):
        x, y = train.take(rng.choice(len(train), batch_size, replace=False))
        if augment:  # the training run's augmentation (wild_lite configs)
            x, y = augment_batch(x, y, rng, rotate=30.0, grey=0.15, infrared=0.1)
        for layer in norms:
            layer.momentum = k / (k + 1.0)  # running mean of the batch statistics; the first batch replaces
        model(x.astype(np.float32), training=True)
    for layer in norms:
        layer.momentum = 0.99
    model.save(out)
    print(f"{out}: {len(norms)} batch norms re-estimated on {batches} batches of {batch_size}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--augment", action="store_true")
    a = ap.parse_args()
    recalibrate(a.model, a.out, a.batches, a.augment)
