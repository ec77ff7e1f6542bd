"""``headpose data label SRC.npz --model M --out OUT.npz``: pseudo-labels from one of our own models.

For distillation (the lite model learns the full model's answers on faces nobody labelled, e.g. ``prepare faces``
of ``../shared/data/faces``) and for filling the angles a set leaves unknown (``--missing``: aflw_wild's pitch
and roll near profile). Our models only: a peer's released model is never a teacher or a source of labels.
``--flip`` (default on) labels with mirror averaging (:class:`headpose.runtime.FlipAverage`), steadier than one
pass. Faces the model reads beyond ±99° keep their predictions; training's ±99° filter drops them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from headpose.data.npz import group_rows, load_groups, load_npz, save_npz
from headpose.runtime import open_model, prepare_input


def pseudo_label(src: str | os.PathLike, model, out: str | os.PathLike, flip: bool = True,
                 missing: bool = False, batch_size: int = 256, quiet: bool = False) -> Path:
    """Label every crop of ``src`` with ``model`` (a path, a bundled name or a runner) and write ``out``.
    ``missing``: replace only the unknown (NaN) angles, keep the known ones."""
    from tqdm import tqdm

    images, pose = load_npz(src, unlabelled=True)
    runner = open_model(model, flip=flip) if isinstance(model, (str, os.PathLike)) else model
    pred = np.empty((len(pose), 3), np.float32)
    step = 1024
    for i in tqdm(range(0, len(pose), step), desc="label", unit="batch", disable=quiet, mininterval=0.5):
        x = prepare_input(np.asarray(images[i : i + step]), runner.channels, runner.img_size)
        pred[i : i + len(x)] = runner(x, batch_size=batch_size)
    new = np.where(np.isnan(pose), pred, pose) if missing else pred
    save_npz(out, np.asarray(images), new, **group_rows(load_groups(src)))
    changed = int(np.isnan(pose).sum()) if missing else new.size
    if not quiet:
        print(f"{out}: {len(pose)} crops, {changed} angles from {model}{' (flip-averaged)' if flip else ''}")
    return Path(out)
