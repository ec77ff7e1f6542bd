"""``headpose evaluate``: MAE per angle of a model file on packed ``.npz`` test sets.

As the original: samples with any angle outside ±99° are left out (N counts what remains). The model runs in its
natural runtime (``runtime.open_model``): LiteRT for ``.tflite``, ONNX Runtime for ``.onnx``, Keras otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from headpose.data.npz import ANGLE_LIMIT, angle_filter, load_npz, nan_mae
from headpose.errors import HeadposeError
from headpose.io import atomic_path, writable_file, write_atomic
from headpose.runtime import FlipAverage, open_model, prepare_input

ANGLES = ("yaw", "pitch", "roll")


def predict_npz(runner, path, batch_size: int = 64, grey: bool = False,
                transform=None) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, labels) of a model runner on an ``.npz`` after the ±99° filter, resized if needed.
    ``grey``: score grey copies of the crops (luminance in all three channels, as a grey camera gives);
    ``transform``: score each crop (uint8 S×S×C) as this function returns it, in the set's order (e.g. a camera
    defect, ``scripts/robustness.py``); not with ``grey``."""
    if grey and transform is not None:
        raise ValueError("predict_npz: give grey or transform, not both")
    images, poses = load_npz(path)
    keep = np.flatnonzero(angle_filter(poses))
    if not len(keep):
        raise HeadposeError(f"{path}: nothing to score ({'an empty set' if not len(poses) else 'no row within ±99°'})")
    pred = np.empty((len(keep), 3), np.float32)
    for i in range(0, len(keep), 1024):
        x = np.asarray(images[keep[i : i + 1024]])
        if grey and x.shape[-1] == 3:
            from headpose.augment import as_grey

            transform = as_grey
        if transform is not None:
            x = np.stack([transform(c) for c in x])
        x = prepare_input(x, runner.channels, runner.img_size)
        pred[i : i + len(x)] = runner(x, batch_size=batch_size)
    return pred, poses[keep]


def mae_table(pred: np.ndarray, true: np.ndarray) -> dict:
    """N and MAE per angle; an angle that is unknown (NaN) in some samples is scored on the others, and
    ``mean`` is over the angles known anywhere (yaw alone for a yaw-only set)."""
    err = nan_mae(pred, true) if len(true) else np.full(3, np.nan)
    mean = float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")
    return {"n": int(len(true)), **{k: float(v) for k, v in zip(ANGLES, err)}, "mean": mean}


def evaluate(model, data: list, json_out=None, plot=None, batch_size: int = 64, quiet: bool = False,
             grey: bool = False, flip: bool | None = None) -> dict:
    """Evaluate ``model`` (a path or a runner) on each test file; prints a table; returns
    ``{file: {"n", "yaw", "pitch", "roll", "mean"}}``. ``grey``: on grey copies of the crops; ``flip``: with
    mirror averaging (:class:`headpose.runtime.FlipAverage`; ``None``: as the model's card says)."""
    _check_outputs(json_out, plot)
    results, curves = _score(model, data, batch_size, grey, flip, quiet)
    if json_out:
        write_atomic(json_out, json.dumps(results, indent=2))
    if plot:
        plot_error_vs_yaw(curves, Path(plot))
    return results


def _check_outputs(json_out, plot) -> None:
    """``--json`` and ``--plot`` checked before the work, not after it (a folder, an unwritable place)."""
    if json_out:
        writable_file(json_out, f"--json {json_out}", "results.json")
    if plot:
        if Path(plot).suffix.lower() != ".png":
            raise HeadposeError(f"--plot {plot}: the plot is a PNG file "
                                f"(name it {Path(plot).with_suffix('.png').name})")
        writable_file(plot, f"--plot {plot}", "error.png")


def _score(model, data: list, batch_size: int, grey: bool, flip: bool | None, quiet: bool) -> tuple[dict, dict]:
    """Each test file's results and (true yaw, |error|); unless ``quiet``, the model's table printed."""
    named = isinstance(model, (str, os.PathLike))
    runner = open_model(model, flip=flip) if named else model
    results, curves = {}, {}
    for path in data:
        pred, true = predict_npz(runner, path, batch_size, grey=grey)
        results[str(path)] = mae_table(pred, true)
        curves[str(path)] = (true[:, 0], np.abs(pred - true))
    if not quiet:
        how = "mirror-averaged" if isinstance(runner, FlipAverage) else "one pass"
        print(format_table(results, title=f"{model} ({how}{', grey copies' if grey else ''})" if named else None))
    return results, curves


def evaluate_models(models: list, data: list, json_out=None, plot=None, batch_size: int = 64, quiet: bool = False,
                    grey: bool = False, flip: bool | None = None) -> dict:
    """Several models on the same test files (``headpose evaluate --model A B ...``): each one's table, then
    ``{model: {file: results}}``; ``plot``: one panel per file, one line per model, error per bin of |yaw|
    (:func:`plot_models_vs_yaw`)."""
    _check_outputs(json_out, plot)
    results, curves = {}, {}
    for m in models:
        results[str(m)], curves[str(m)] = _score(m, data, batch_size, grey, flip, quiet)
    if json_out:
        write_atomic(json_out, json.dumps(results, indent=2))
    if plot:
        plot_models_vs_yaw(curves, Path(plot))
    return results


YAW_BINS = ((0, 30), (30, 60), (60, 75), (75, 99))


def labelled_photos(src, half: str | None = None) -> list:
    """The photos of ``src`` that have a ``.mat`` label beside them, in name order (:func:`headpose.data.mat.find`);
    ``half``: ``"a"`` / ``"b"``, only the even / odd ones (as ``headpose data halves``)."""
    from headpose.data.mat import find

    if not Path(src).is_dir():
        raise HeadposeError(f"{src}: no such folder (--photos takes a folder of photos with their .mat labels)")
    items = [it for it in find(Path(src)) if it.label]
    if half is not None:
        if half not in ("a", "b"):
            raise HeadposeError(f"--half {half!r}: expected a or b")
        items = items[("a", "b").index(half)::2]
    if not items:
        raise HeadposeError(f"{src}: no image with a .mat beside it")
    return items


def face_at(faces, point):
    """The best-scoring of ``faces`` (anything with ``.box`` x0, y0, x1, y1 and ``.score``) whose box holds
    ``point`` (x, y), or None: the face a labelled photo's landmarks belong to."""
    x, y = point
    hits = [f for f in faces if f.box[0] <= x <= f.box[2] and f.box[1] <= y <= f.box[3]]
    return max(hits, key=lambda f: f.score) if hits else None


def evaluate_photos(model, src, half: str | None = None, margin: float | None = None, detector: str = "full",
                    quiet: bool = False, json_out=None, flip: bool | None = None) -> dict:
    """End to end on labelled photos (AFLW2000 / 300W-LP layout: ``NAME.jpg`` + ``NAME.mat``): the detector,
    the crop and the pose model as :class:`headpose.HeadPoseEstimator` runs them on the whole photo.

    The face scored is the best-scoring detection whose box holds the centre of the labelled landmarks; a photo
    with none counts as missed. Photos with any angle beyond ±99° are left out (the protocol's filter).
    ``half``: ``"a"`` / ``"b"``, the even / odd photos in name order (as ``headpose data halves``). Returns
    ``{"n", "found", "yaw", "pitch", "roll", "mean", "missed_by_yaw": {"0-30": [missed, n], ...}}``.
    """
    from tqdm import tqdm

    from headpose import HeadPoseEstimator
    from headpose.data.items import Skip, read_image
    from headpose.data.mat import landmark_box, read_mat

    items = labelled_photos(src, half)
    _check_outputs(json_out, None)
    est = HeadPoseEstimator(model, detector=detector, margin=margin, flip=flip)
    pred, true, found, skipped = [], [], [], 0
    for it in tqdm(items, desc="evaluate photos", unit="img", disable=quiet, mininterval=0.5):
        try:
            pose, pt2d = read_mat(it.label)
            x0, y0, x1, y1 = landmark_box(pt2d)
            image = read_image(it.image)
        except Skip:
            skipped += 1
            continue
        if np.abs(pose).max() > ANGLE_LIMIT:
            continue
        face = face_at(est.predict(image), ((x0 + x1) / 2, (y0 + y1) / 2))
        true.append(pose)
        found.append(face is not None)
        pred.append(face.angles if face is not None else (np.nan,) * 3)
    pred, true, found = np.array(pred, np.float32), np.array(true, np.float32), np.array(found)
    res = mae_table(pred[found], true[found])
    res["found"] = int(found.sum())
    res["n"] = int(len(found))
    ay = np.abs(true[:, 0])
    res["missed_by_yaw"] = {f"{lo}-{hi}": [int((~found & (ay >= lo) & (ay < hi + (hi == 99))).sum()),
                                           int(((ay >= lo) & (ay < hi + (hi == 99))).sum())] for lo, hi in YAW_BINS}
    if skipped:
        res["skipped"] = skipped
    if not quiet:
        miss = ", ".join(f"{k}°: {m}/{n}" for k, (m, n) in res["missed_by_yaw"].items())
        print(f"{model} on {src}{f' (half {half})' if half else ''}: {res['n']} photos, faces found "
              f"{res['found']} ({100 * res['found'] / max(res['n'], 1):.1f}%); MAE yaw {res['yaw']:.2f}, pitch "
              f"{res['pitch']:.2f}, roll {res['roll']:.2f}, mean {res['mean']:.2f} (found faces); "
              f"missed by |yaw| {miss}")
    if json_out:
        write_atomic(json_out, json.dumps(res, indent=2))
    return res


def format_table(results: dict, title: str | None = None) -> str:
    w = max([len(Path(k).name) for k in results] + [8])
    lines = [title] if title else []
    lines.append(f"{'test set':<{w}}  {'N':>6}  {'yaw':>6}  {'pitch':>6}  {'roll':>6}  {'mean':>6}")
    for k, r in results.items():
        lines.append(f"{Path(k).name:<{w}}  {r['n']:>6}  {r['yaw']:>6.2f}  {r['pitch']:>6.2f}  {r['roll']:>6.2f}  "
                     f"{r['mean']:>6.2f}")
    return "\n".join(lines)


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
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def error_by_yaw(yaw: np.ndarray, err: np.ndarray, bin_width: float = 15.0):
    """Per-sample error (the mean over the known angles of ``err``, N×k) averaged in bins of |true yaw| from 0 to
    the ±99° limit, the last bin closed at 99: ``(bin centres, mean error per bin (NaN if empty), counts)``."""
    edges = np.append(np.arange(0, ANGLE_LIMIT, bin_width), ANGLE_LIMIT)
    which = np.clip(np.digitize(np.abs(yaw), edges) - 1, 0, len(edges) - 2)
    per_sample = np.nanmean(err, axis=1)
    counts = np.bincount(which, minlength=len(edges) - 1)
    sums = np.bincount(which, weights=per_sample, minlength=len(edges) - 1)
    return (edges[:-1] + edges[1:]) / 2, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), counts


def plot_models_vs_yaw(curves: dict, png: Path, bin_width: float = 15.0):
    """Several models side by side: ``curves`` is ``{model: {test set: (true yaw, |error| N×k)}}``; one panel per
    test set, one line per model (:func:`error_by_yaw`; the legend gives each model's MAE, as ``mae_table``), and
    the samples per bin in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(next(iter(curves.values())))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4.2), squeeze=False)
    for ax, name in zip(axes[0], sets):
        for i, (model, per_set) in enumerate(curves.items()):
            yaw, err = per_set[name]
            centres, m, counts = error_by_yaw(yaw, err, bin_width)
            ax.plot(centres, m, marker="o", ms=3, label=f"{model} ({np.nanmean(np.nanmean(err, axis=0)):.2f})")
            if i == 0:
                for c, n in zip(centres, counts):
                    ax.annotate(str(n), (c, 0), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=7,
                                color="gray")
        ax.set_title(Path(name).name)
        ax.set_xlabel("|true yaw| (degrees); grey: samples per bin")
        ax.set_ylabel("mean absolute error (degrees)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
