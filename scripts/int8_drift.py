"""How far the bundled int8 models read from their float models: mean |int8 - float| in degrees, over the three
angles, on held-out crops (BIWI 04 11 17 22, AFLW2000 half b, aflw_wild p14; made by
``scripts/build_wild_model.sh``), each model read as it reads by default (its card's mirror averaging for both).

    python scripts/int8_drift.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headpose.data.npz import load_npz
from headpose.runtime import open_model

DATA = Path("runs/data")
SETS = ("biwi_hold.npz", "aflw2000_b.npz", "wild_hold.npz")


def main() -> None:
    for name in ("full", "lite"):
        fp, q = open_model(name), open_model(f"{name}-int8")
        cells = []
        for s in SETS:
            x, _ = load_npz(DATA / s)
            cells.append(f"{s}: {np.abs(q(x) - fp(x)).mean():.2f}°")
        print(f"{name}: int8 minus float, mean |difference|  " + "  ".join(cells))


if __name__ == "__main__":
    main()
