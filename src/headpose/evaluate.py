"""``headpose evaluate``: MAE per angle of a model file on packed ``.npz`` test sets.

As the original: samples with any angle outside ±99° are left out (N counts what remains). The model runs in its
natural runtime (``runtime.open_model``): LiteRT for ``.tflite``, ONNX Runtime for ``.onnx``, Keras otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from headpose.data.npz import angle_filter, load_npz, nan_mae
from headpose.runtime import open_model, prepare_input

ANGLES = ("yaw", "pitch", "roll")


def predict_npz(runner, path, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, labels) of a model runner on an ``.npz`` after the ±99° filter, resized if needed."""
    images, poses = load_npz(path)
    keep = np.flatnonzero(angle_filter(poses))
    pred = np.empty((len(keep), 3), np.float32)
    for i in range(0, len(keep), 1024):
        x = prepare_input(np.asarray(images[keep[i : i + 1024]]), runner.channels, runner.img_size)
        pred[i : i + len(x)] = runner(x, batch_size=batch_size)
    return pred, poses[keep]


def mae_table(pred: np.ndarray, true: np.ndarray) -> dict:
    """N and MAE per angle; an angle that is unknown (NaN) in some samples is scored on the others, and
    ``mean`` is over the angles known anywhere (yaw alone for a yaw-only set)."""
    err = nan_mae(pred, true) if len(true) else np.full(3, np.nan)
    mean = float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")
    return {"n": int(len(true)), **{k: float(v) for k, v in zip(ANGLES, err)}, "mean": mean}


def evaluate(model, data: list, json_out=None, plot=None, batch_size: int = 64, quiet: bool = False) -> dict:
    """Evaluate ``model`` (a path or a runner) on each test file; prints a table; returns
    ``{file: {"n", "yaw", "pitch", "roll", "mean"}}``."""
    runner = open_model(model) if isinstance(model, (str, os.PathLike)) else model
    results, curves = {}, {}
    for path in data:
        pred, true = predict_npz(runner, path, batch_size)
        results[str(path)] = mae_table(pred, true)
        curves[str(path)] = (true[:, 0], np.abs(pred - true))
    if not quiet:
        print(format_table(results, title=f"{model}" if isinstance(model, (str, os.PathLike)) else None))
    if json_out:
        _write_atomic(Path(json_out), json.dumps(results, indent=2))
    if plot:
        plot_error_vs_yaw(curves, Path(plot))
    return results


def format_table(results: dict, title: str | None = None) -> str:
    w = max([len(Path(k).name) for k in results] + [8])
    lines = [title] if title else []
    lines.append(f"{'test set':<{w}}  {'N':>6}  {'yaw':>6}  {'pitch':>6}  {'roll':>6}  {'mean':>6}")
    for k, r in results.items():
        lines.append(f"{Path(k).name:<{w}}  {r['n']:>6}  {r['yaw']:>6.2f}  {r['pitch']:>6.2f}  {r['roll']:>6.2f}  "
                     f"{r['mean']:>6.2f}")
    return "\n".join(lines)


def _write_atomic(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def plot_error_vs_yaw(curves: dict, png: Path, bin_width: float = 10.0):
    """Mean absolute error per angle in bins of true yaw, one panel per test file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4), squeeze=False)
    for ax, (name, (yaw, err)) in zip(axes[0], curves.items()):
        edges = np.arange(-99, 99 + bin_width, bin_width)
        centres = (edges[:-1] + edges[1:]) / 2
        which = np.digitize(yaw, edges) - 1
        for j, k in enumerate(ANGLES):
            m = [np.nanmean(err[which == b, j]) if np.isfinite(err[which == b, j]).any() else np.nan
                 for b in range(len(centres))]
            ax.plot(centres, m, marker="o", ms=3, label=k)
        ax.scatter(yaw, np.nanmean(err, axis=1), s=2, alpha=0.15, color="gray", label="per sample (mean)")
        ax.set_title(Path(name).name)
        ax.set_xlabel("true yaw (degrees)")
        ax.set_ylabel("absolute error (degrees)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".tmp-{png.name}")
    fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    os.replace(tmp, png)
