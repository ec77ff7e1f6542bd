"""Renderer speed (a benchmark, not a test): ``python -m headpose.synth.bench MESH_DIR [--meshes 8] [--size 256]``.

Reports (1) renders/s of the rasteriser alone in one process (projection + z-buffer + texture, no file I/O)
and (2) end-to-end ``synth render`` renders/s with ``--workers`` processes over the original 475-pose grid:
PNG + label written per render, as a user runs it. Results are printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def bench(mesh_dir, meshes: int = 8, size: int = 256, workers: int = 2) -> dict:
    from headpose.synth.grid import grid_poses
    from headpose.synth.obj import read_obj
    from headpose.synth.render import find_pairs, prepare, render, render_dir

    pairs, _, _ = find_pairs(mesh_dir, mesh_dir)
    pairs = pairs[:meshes]
    if not pairs:
        raise SystemExit(f"{mesh_dir}: no NAME.obj + NAME.png meshes")
    name, tex, obj = pairs[0]
    pm = prepare(read_obj(obj), cv2.imread(str(tex)), size)
    poses = grid_poses()
    render(pm, 0, 0, 0)  # compile / load the numba cache
    t = time.perf_counter()
    for y, p, r in poses:
        render(pm, y, p, r, np.zeros((size, size, 3), np.uint8))
    raster = len(poses) / (time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "in"
        sub.mkdir()
        for name, tex, obj in pairs:
            shutil.copy(tex, sub / f"{name}{Path(tex).suffix}")
            shutil.copy(obj, sub / f"{name}.obj")
        s = render_dir(sub, sub, Path(tmp) / "out", size=size, workers=workers, quiet=True)
    return {"size": size, "triangles": len(pm.faces), "raster_only_per_s_1_process": round(raster, 1),
            "end_to_end_per_s": round(s["images_per_s"], 1), "workers": workers, "images": s["images"],
            "meshes": len(pairs), "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m headpose.synth.bench", description=__doc__.splitlines()[0])
    p.add_argument("mesh_dir")
    p.add_argument("--meshes", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    print(json.dumps(bench(a.mesh_dir, a.meshes, a.size, a.workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
