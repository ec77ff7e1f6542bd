"""How far a model's angles move when the face crop is degraded as real cameras degrade it: low resolution (a small
face in a wide frame, upscaled to 64×64), JPEG compression (video, messaging apps), sensor noise, low light, motion
blur, grey. For each condition, the mean error on the sets and its change from the clean crops; then the mean
over the ten conditions, and both averaged over the sets.

    python scripts/robustness.py full lite ../shared/peers/seed_head_pose_v2_fp32.tflite
    python scripts/robustness.py --sets runs/data/aflw2000_b.npz,runs/data/biwi_hold.npz full

The degradation is applied to the stored 64×64 crops with a fixed seed, so every model reads the same pixels.
Default sets: the selection data (AFLW2000 half a, BIWI 02 14, ``aflw_wild`` p13).
"""

from __future__ import annotations

import argparse

import numpy as np

from headpose.augment import as_grey, degrade_crop
from headpose.evaluate import mae_table, predict_npz
from headpose.runtime import open_model

SELECTION = ("runs/data/aflw2000_a.npz", "runs/data/biwi_select.npz", "runs/data/wild_select.npz")


def dark(x: np.ndarray, gamma: float) -> np.ndarray:
    """Low light: every level ``v`` of 0-255 to 255·(v/255)^gamma."""
    return (255 * (x / 255.0) ** gamma + 0.5).astype(np.uint8)


def conditions(rng) -> dict:
    """Name → crop transform; the camera defects are :func:`headpose.augment.degrade_crop`'s (the training
    augmentation's own), motion horizontal."""
    def d(length=0, side=0, sigma=0.0, quality=0):
        return lambda x: degrade_crop(x, length, 0.0, side, sigma, quality, rng)

    return {
        "clean": None,
        "grey": as_grey,
        "32 px face": d(side=32),
        "20 px face": d(side=20),
        "JPEG q30": d(quality=30),
        "JPEG q10": d(quality=10),
        "noise σ10": d(sigma=10.0),
        "noise σ20": d(sigma=20.0),
        "dark (γ 2.5)": lambda x: dark(x, 2.5),
        "dark + noise σ8": lambda x: degrade_crop(dark(x, 2.5), 0, 0.0, 0, 8.0, 0, rng),
        "motion blur 7 px": d(length=7),
    }


def main(models, sets=SELECTION, flip=None) -> None:
    names = [s.rsplit("/", 1)[-1].removesuffix(".npz") for s in sets]
    for m in models:
        runner = open_model(m, flip=flip)
        print(f"\n{m} ({type(runner).__name__})")
        print(f"{'condition':<18}" + "".join(f"{n:>22}" for n in names))
        rows = {}
        for cond, fn in conditions(np.random.default_rng(0)).items():
            rows[cond] = [mae_table(*predict_npz(runner, path, 256, transform=fn))["mean"] for path in sets]
            print_row(cond, rows[cond], rows["clean"])
        degraded = np.mean([v for k, v in rows.items() if k != "clean"], axis=0)
        print_row("mean of the ten", degraded, rows["clean"])
        print(f"all sets: clean {np.mean(rows['clean']):.2f}, degraded {np.mean(degraded):.2f}")


def print_row(name: str, row, clean) -> None:
    cells = [f"{v:6.2f}" + ("" if row is clean else f" ({v - b:+5.2f})") for v, b in zip(row, clean)]
    print(f"{name:<18}" + "".join(f"{c:>22}" for c in cells), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--sets", default=",".join(SELECTION))
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                    help="mirror averaging on/off (default: as each model's card says)")
    a = ap.parse_args()
    main(a.models, tuple(a.sets.split(",")), a.flip)
