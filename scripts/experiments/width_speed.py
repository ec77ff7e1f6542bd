"""Pose crops/s of untrained SSR-Net-MT at several widths, converted to float TFLite, LiteRT 1 thread, batch 1,
against the seed's .tflite timed in the same run (the width choice of the lite model in docs/product.md).

    python scripts/experiments/width_speed.py --peer ../shared/peers/seed_head_pose_v2_fp32.tflite 1.0 0.75 0.625 0.5
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def rate(runner, crop, seconds: float = 2.0) -> float:
    from headpose.bench import measure

    return measure(lambda: runner(crop, batch_size=1), 1, seconds)["per_s"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("widths", nargs="+", type=float)
    p.add_argument("--peer", required=True)
    a = p.parse_args()
    from headpose.export import to_tflite
    from headpose.model import build_model
    from headpose.runtime import LiteRTRunner

    crop = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    peer = rate(LiteRTRunner(a.peer, threads=1), crop)
    with tempfile.TemporaryDirectory() as d:
        for w in a.widths:
            path = Path(d) / f"w{w}.tflite"
            model = build_model(width=w)
            path.write_bytes(to_tflite(model, int8=False))
            r = rate(LiteRTRunner(path, threads=1), crop)
            print(f"width {w:g}: {model.count_params()} weights, {r:.0f} crops/s, ×{r / peer:.2f} the peer "
                  f"({peer:.0f})")


if __name__ == "__main__":
    main()
