"""Train runs one after another within a time budget, on whatever backend Keras is set to (the device machine has
JAX with a GPU, no TensorFlow: ``KERAS_BACKEND=jax``), copying each run's ``best.keras`` and ``history.csv`` to
``--copy-to`` as it ends (the device machine gives back only what is written there).

    KERAS_BACKEND=jax python scripts/device_train.py configs/a.toml configs/b.toml --seconds 420 --workers 12 \\
        --copy-to "$OUT"

Each run is ``headpose train --config CONFIG --workers N`` (input threads: the batches and their augmentation do
not depend on them); a run still going when the budget ends is stopped, and what it saved so far
(its best checkpoint) is copied. ``headpose train --resume RUN`` finishes a stopped run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from headpose.train import config_from  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="+")
    p.add_argument("--seconds", type=float, required=True, help="time budget for all the runs")
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--copy-to", type=Path, required=True)
    p.add_argument("--keep", nargs="+", default=["best.keras", "history.csv"], help="files of each run to copy")
    a = p.parse_args(argv)
    end = time.monotonic() + a.seconds
    a.copy_to.mkdir(parents=True, exist_ok=True)
    for config in a.configs:
        left = end - time.monotonic()
        if left < 60:
            print(f"{config}: not started ({left:.0f} s left)", flush=True)
            continue
        out = Path(config_from(config=config).out)
        t0 = time.monotonic()
        try:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                        os.environ.get("PYTHONPATH")]))}
            rc = subprocess.run([sys.executable, "-m", "headpose", "train", "--config", config, "--workers",
                                 str(a.workers)], cwd=ROOT, env=env, timeout=left).returncode
        except subprocess.TimeoutExpired:
            rc = "stopped at the time budget"
        print(f"{config}: {rc} after {time.monotonic() - t0:.0f} s", flush=True)
        for name in a.keep:
            if (out / name).exists():
                shutil.copy(out / name, a.copy_to / f"{out.name}_{name}")


if __name__ == "__main__":
    main()
