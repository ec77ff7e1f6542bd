"""``headpose prepare FORMAT --src DIR --out OUT.npz``: pack a dataset in its original layout into ``.npz``.

Formats and their readers: ``300wlp`` / ``aflw2000`` (:mod:`headpose.data.mat`), ``aflw-wild``
(:mod:`headpose.data.aflw_wild`: yaw labels, pitch and roll derived from landmarks, NaN where unknown), ``biwi``
(:mod:`headpose.data.biwi`), ``folder`` (:mod:`headpose.data.folder`), ``faces`` (:mod:`headpose.data.faces`:
unlabelled photos, pose NaN until ``headpose data label``).

Images are loaded, cropped and labelled in worker processes (all CPU cores by default) with a progress bar.
Bad inputs (unreadable image, ``.mat`` without ``Pose_Para``, label file with the wrong number of values,
image without a label, no face found, ...) are skipped, counted by reason and listed in ``OUT.report.txt``
beside the output; the rest is packed. Outputs are written atomically (:func:`headpose.data.npz.save_npz`).
With ``split``, whole sequences / identities (the reader's groups) go to ``OUT_train.npz`` or
``OUT_test.npz``, drawn reproducibly from ``seed``.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from headpose.data.items import Item, Skip
from headpose.data.npz import ANGLE_LIMIT, angle_filter, save_npz
from headpose.errors import HeadposeError
from headpose.io import writable_file, write_atomic
from headpose.workers import WorkersDied, imap_workers

READERS = {"300wlp": "mat", "aflw2000": "mat", "aflw-wild": "aflw_wild", "biwi": "biwi", "folder": "folder",
           "faces": "faces"}
ERROR = "unexpected error"


def _reader(fmt: str):
    if fmt not in READERS:
        raise HeadposeError(f"unknown dataset format {fmt!r} (expected one of: {', '.join(READERS)})")
    return importlib.import_module(f"headpose.data.{READERS[fmt]}")


def _work(args: tuple[str, Item, int, float | None, dict]):
    """Load one item in a worker: ("ok", crop, pose) or ("skip", reason, detail)."""
    module, item, size, margin, options = args
    try:
        crop, pose = importlib.import_module(module).load(item, size, margin, **options)
        return "ok", crop, pose
    except Skip as s:
        return "skip", s.reason, s.detail
    except Exception as e:  # noqa: BLE001 (a bug or an odd file: report it, finish the rest)
        return "skip", ERROR, f"{type(e).__name__}: {e}"


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _init_worker():
    import cv2

    cv2.setNumThreads(1)  # the pool is the parallelism; OpenCV threads would only oversubscribe the cores


def _run(module: str, items: list[Item], size: int, margin: float | None, workers: int, desc: str,
         options: dict | None = None):
    """Yield results in item order, with a progress bar (and its ETA) on stderr. ``options``: keyword arguments
    of the reader's ``load`` beyond size and margin (``fill``)."""
    from tqdm import tqdm

    args = [(module, it, size, margin, options or {}) for it in items]
    chunk = max(1, min(64, len(items) // (workers * 8)))
    procs = min(workers, math.ceil(len(items) / chunk))
    bar = tqdm(total=len(items), desc=desc, unit="img", mininterval=0.5, file=sys.stderr, dynamic_ncols=True)
    done = 0
    try:
        if procs > 1:
            try:
                for r in imap_workers(_work, args, procs, initializer=_init_worker, chunksize=chunk, ordered=True):
                    yield r
                    done += 1
                    bar.update()
            except WorkersDied:
                # Workers died (typically: a script calling prepare() without `if __name__ == "__main__":`,
                # which spawned workers re-run). Finish here rather than fail or hang.
                print(f"{desc}: worker processes failed; continuing in this process", file=sys.stderr)
        for a in args[done:]:
            yield _work(a)
            bar.update()
    finally:
        bar.close()


def split_groups(groups: list[str], split: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Draw ``round(split · n)`` of the ``n`` distinct groups for training (at least one on each side),
    reproducibly from ``seed``. Returns (train groups, test groups), each sorted."""
    uniq = sorted(set(groups))
    if len(uniq) < 2:
        raise HeadposeError(f"--split needs at least 2 sequences / identities (sub-folders), found {len(uniq)}")
    n_train = min(max(round(split * len(uniq)), 1), len(uniq) - 1)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    train = sorted(uniq[i] for i in perm[:n_train])
    test = sorted(uniq[i] for i in perm[n_train:])
    return train, test


def report_path(out: Path) -> Path:
    """``OUT.report.txt`` beside ``OUT.npz``."""
    return out.with_name(f"{out.stem if out.suffix == '.npz' else out.name}.report.txt")


def split_paths(out: Path) -> tuple[Path, Path]:
    base = out.stem if out.suffix == ".npz" else out.name
    return out.with_name(f"{base}_train.npz"), out.with_name(f"{base}_test.npz")


def prepare(fmt: str, src, out, size: int = 64, margin: float | None = None, workers: int | None = None,
            split: float | None = None, seed: int = 0, test_groups: list[str] | None = None,
            groups: list[str] | None = None, fill: str | None = None) -> bool:
    """Pack dataset ``src`` (layout ``fmt``) into ``out``; True if at least one crop was packed.

    ``margin``: crop margin (default 0.6 for the landmark boxes of 300W-LP / AFLW2000, 0.4 for detector
    crops). ``workers``: processes (default: all cores). ``split``: train fraction of the sequences /
    identities, written to ``OUT_train.npz`` and ``OUT_test.npz``; ``test_groups`` (Python API) names the
    held-out groups instead of drawing them. ``groups``: pack only these groups. ``fill``: what fills a crop box
    beyond the image, for readers that pad (``aflw-wild``: "blur" by default, or "black"; see
    :func:`headpose.detect.crop_padded`).
    """
    t0 = time.perf_counter()
    reader = _reader(fmt)
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise HeadposeError(f"{src}: no such folder")
    if size < 8:
        raise HeadposeError(f"--size {size}: too small (at least 8)")
    if margin is not None and not (0 <= margin <= 5):
        raise HeadposeError(f"--margin {margin}: expected a fraction between 0 and 5")
    if split is not None and not (0 < split < 1):
        raise HeadposeError(f"--split {split}: expected the train fraction, between 0 and 1")
    if split is not None and test_groups is not None:
        raise HeadposeError("give --split (draw the held-out groups) or --holdout (name them), not both")
    if out.suffix.lower() != ".npz":
        raise HeadposeError(f"--out {out}: the packed set is an .npz file (name it {out.with_suffix('.npz').name})")
    for path in ([out] if split is None and test_groups is None else split_paths(out)):
        writable_file(path, f"--out {path}", "data.npz")
    workers = _default_workers() if workers is None else max(1, int(workers))
    options = {}
    if fill is not None:
        from headpose.detect import PAD_FILLS

        if not hasattr(reader, "FILL"):
            raise HeadposeError(f"--fill: the {fmt} reader does not pad its crops (it applies to aflw-wild)")
        if fill not in PAD_FILLS:
            raise HeadposeError(f"--fill {fill}: expected one of {', '.join(PAD_FILLS)}")
        options["fill"] = fill

    items = reader.find(src)
    if not items:
        raise HeadposeError(f"{src}: no images found for format '{fmt}'")
    if groups is not None:
        known = {it.group for it in items}
        missing = sorted(set(groups) - known)
        if known == {""}:
            raise HeadposeError(f"{src}: the {fmt} reader has no groups (sequences or identities) to choose from")
        if missing:
            raise HeadposeError(f"{src}: groups not found: {', '.join(missing)} (has: {', '.join(sorted(known))})")
        items = [it for it in items if it.group in set(groups)]
    train_groups = test_set = None
    if test_groups is not None:
        known = {it.group for it in items}
        missing = sorted(set(test_groups) - known)
        if missing:
            raise HeadposeError(f"{src}: held-out groups not found: {', '.join(missing)}")
        test_set = sorted(set(test_groups))
        train_groups = sorted(known - set(test_set))
        if not train_groups:
            raise HeadposeError(f"{src}: every group is held out; nothing left to train on")
    elif split is not None:
        train_groups, test_set = split_groups([it.group for it in items], split, seed)

    images = np.empty((len(items), size, size, 3), np.uint8)
    poses = np.empty((len(items), 3), np.float32)
    ok = np.zeros(len(items), bool)
    skips: list[tuple[str, str, str]] = []
    results = _run(reader.__name__, items, size, margin, workers, f"prepare {fmt}", options)
    for i, r in enumerate(results):
        if r[0] == "ok":
            images[i], poses[i], ok[i] = r[1], r[2], True
        else:
            skips.append((r[1], items[i].image, r[2]))
    n_ok = int(ok.sum())
    item_groups = np.array([it.group for it in items])

    written: list[tuple[Path, int]] = []
    if n_ok:
        if test_set is None:
            save_npz(out, images[ok], poses[ok], group=item_groups[ok])
            written.append((out, n_ok))
        else:
            in_test = np.isin(item_groups, test_set)
            sides = list(zip(split_paths(out), (ok & ~in_test, ok & in_test), (train_groups, test_set)))
            empty = [(path, names) for path, mask, names in sides if not mask.any()]
            for path, names in empty:  # a split with an empty side is no split: neither file is written
                print(f"headpose: error: {path}: the split leaves it empty (every image of its groups "
                      f"{' '.join(names)} was skipped: {report_path(out)}); nothing written", file=sys.stderr)
            for path, mask, _ in [] if empty else sides:
                save_npz(path, images[mask], poses[mask], group=item_groups[mask])
                written.append((path, int(mask.sum())))

    elapsed = time.perf_counter() - t0
    by_reason = Counter(reason for reason, _, _ in skips)
    reasons = ", ".join(f"{n} {r}" for r, n in by_reason.most_common())
    lines = [
        f"headpose prepare {fmt} --src {src} --out {out} --size {size}"
        + (f" --margin {margin}" if margin is not None else "")
        + (f" --fill {fill}" if fill is not None else "")
        + (f" --split {split} --seed {seed}" if split is not None else "")
        + (f" --holdout {','.join(test_groups)}" if test_groups else "")
        + (f" --groups {','.join(groups)}" if groups is not None else ""),
        f"images: {len(items)}",
        f"packed: {n_ok}",
        f"skipped: {len(skips)}",
        *(f"  {r}: {n}" for r, n in by_reason.most_common()),
    ]
    if test_set is not None:
        lines += [f"train groups: {' '.join(train_groups)}", f"test groups: {' '.join(test_set)}"]
    lines += [f"output: {p} ({n} crops)" for p, n in written]
    lines += ["", "reason\timage\tdetail", *(f"{r}\t{p}\t{d}" for r, p, d in skips)]
    rep = report_path(out)
    write_atomic(rep, "\n".join(lines) + "\n")

    if test_set is not None:
        n_tr, n_te = (written[0][1], written[1][1]) if written else (0, 0)
        print(f"split by {'sequence' if fmt == 'biwi' else 'identity'}"
              + (f" (seed {seed})" if test_groups is None else " (given)")
              + f": train {len(train_groups)} [{' '.join(train_groups)}] {n_tr} crops; "
              f"test {len(test_set)} [{' '.join(test_set)}] {n_te} crops")
    if n_ok:
        unlabelled = int(np.isnan(poses[ok]).all(axis=1).sum())
        unknown = int(np.isnan(poses[ok]).any(axis=1).sum()) - unlabelled
        if unlabelled:
            print(f"note: {unlabelled} samples are unlabelled (pose unknown): `headpose data label` fills them")
        if unknown:
            print(f"note: {unknown} samples have an unknown angle (NaN: not trained on, not scored)")
        beyond = int((~angle_filter(poses[ok]) & ~np.isnan(poses[ok]).all(axis=1)).sum())
        if beyond:
            print(f"note: {beyond} samples have an angle beyond ±{ANGLE_LIMIT:g}° (kept; npz.angle_filter drops them)")
    dest = ", ".join(str(p) for p, _ in written) or "nothing written"
    print(f"prepare {fmt}: packed {n_ok} of {len(items)} images, skipped {len(skips)}"
          + (f" ({reasons})" if reasons else "")
          + f" in {elapsed:.1f} s ({n_ok / max(elapsed, 1e-9):.0f} crops/s) -> {dest}; report {rep}")
    return bool(written)
