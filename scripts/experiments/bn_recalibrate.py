"""Re-estimate a model's batch-norm statistics on its training data (as SWA does after averaging weights): every
batch norm's moving mean and variance become the average of its batch statistics over ``--batches`` random
batches of 256 of a training config's data (augmented as that config trains, with ``--augment``), read in
training mode. Session 14 tried it on the shipped lite model (a weight average whose
statistics are the average of its ingredients'); neither clean nor augmented batches helped (README, session 14).

    python scripts/experiments/bn_recalibrate.py runs/lite_cand/soup_s10_7d_8d.keras runs/bnrecal/lite_aug40.keras \\
        --batches 40 --augment [--config configs/wild_lite_bL10d.toml]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIG = "configs/wild_lite_bL10d.toml"  # the shipped lite model's last training mix


def recalibrate(src: str, out: str, batches: int, augment: bool, config: str = CONFIG, batch_size: int = 256) -> None:
    import keras

    from headpose.augment import augment_batch
    from headpose.model import load_model
    from headpose.train import ArraySet, config_from

    cfg = config_from(config=config)
    train = ArraySet(cfg.data)
    model = load_model(src)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    rng = np.random.default_rng(0)
    for k in range(batches):
        x, y = train.take(rng.choice(len(train), batch_size, replace=False))
        if augment:  # as the config trains
            x, y = augment_batch(x, y, rng, rotate=cfg.rotate, grey=cfg.grey, infrared=cfg.infrared, erase=cfg.erase)
        for layer in norms:
            layer.momentum = k / (k + 1.0)  # running mean of the batch statistics; the first batch replaces
        model(x.astype(np.float32), training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    model.save(out)
    print(f"{out}: {len(norms)} batch norms re-estimated on {batches} batches of {batch_size}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--augment", action="store_true")
    ap.add_argument("--config", default=CONFIG, help="training config whose data (and augmentation) to read")
    a = ap.parse_args()
    recalibrate(a.model, a.out, a.batches, a.augment, a.config)
