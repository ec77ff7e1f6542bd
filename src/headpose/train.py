"""``headpose train``: fit SSR-Net-MT on packed ``.npz`` datasets.

Defaults as the original project: batch 32, Adam (lr 1e-3), learning rate ×0.1 at epochs 30 and 60, 150 epochs,
MAE loss, samples with any angle outside ±99° dropped. Batches stream from memory-mapped arrays and are augmented
one batch at a time. A run folder holds ``config.json``, ``best.keras`` (lowest validation MAE), ``last.keras``
(with optimizer state, for ``--resume``), ``state.json``, ``history.csv`` and ``history.png``.

Settings are declared once, in :class:`TrainConfig`: each field is a key of a ``--config`` TOML file and a flag
of ``headpose train`` (the CLI derives its flags from the fields). :func:`config_from` overlays a TOML file with
a dict of settings (the flags given), :func:`train_from_settings` is what the command runs, :func:`train` takes a
:class:`TrainConfig`.

Speed on the TensorFlow backend, with the same maths: batch norm trains with TensorFlow's fused kernel and the two
conv streams run on a core each (:mod:`headpose.tfkernels`). ``precision="bfloat16"`` computes the streams in
mixed bfloat16 (best.keras is saved float32); ``width`` scales the network's channels (0.5: the lite model).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
import tomllib
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from headpose.data.npz import angle_filter, load_npz, nan_mae
from headpose.errors import HeadposeError
from headpose.io import atomic_path, write_atomic


def _setting(default=MISSING, *, factory=MISSING, help: str, **flag) -> Any:
    """A :class:`TrainConfig` field: its default, the ``--help`` text of its flag, and further ``argparse``
    options (``choices``, ``metavar``, ``exclusive``: flags of one group name are mutually exclusive)."""
    return field(default=default, default_factory=factory, metadata={"help": help, **flag})


@dataclass
class TrainConfig:
    """Every setting of a training run, declared once: each field is a key of the ``--config`` TOML file and a
    flag of ``headpose train`` (``--`` and the name with dashes: ``batch_size`` → ``--batch-size``; a boolean
    ``x`` → ``--x`` / ``--no-x``), with the help text and options of its metadata."""

    data: list[str] = _setting(factory=list, help="training .npz files (concatenated)", metavar="NPZ")
    out: str = _setting("runs/train", help="run folder (checkpoints, history.csv, plot); required on the command "
                                           "line (runs/train is the default of the Python API)")
    val: list[str] | None = _setting(None, help="validation .npz files", metavar="NPZ", exclusive="validation")
    val_split: float | None = _setting(None, help="hold out this fraction of the training data for validation: "
                                                  "random samples, so near-duplicate video frames land on both "
                                                  "sides; for BIWI-like sets give --val sets split by sequence",
                                       exclusive="validation")
    epochs: int = _setting(150, help="epochs in all (with --resume: train on to this many)")
    batch_size: int = _setting(32, help="samples per step")
    lr: float = _setting(1e-3, help="Adam's learning rate")
    lr_decay_epochs: tuple[int, ...] = _setting((30, 60), help="epochs at which the learning rate is multiplied "
                                                               "by --lr-decay", metavar="EPOCH")
    lr_decay: float = _setting(0.1, help="factor of each learning-rate step")
    seed: int = _setting(0, help="seed of the weights, the batch order and the augmentation")
    augment: bool = _setting(True, help="augmentation: crop-and-shift, zoom, brightness/contrast/blur, flip "
                                        "(--no-augment: the crops as they are)")
    rotate: float = _setting(30.0, help="augmentation: in-plane rotation, ± degrees (half the batch); 0: the "
                                        "original's augmentation")
    size: int | None = _setting(None, help="input image size (default: the data's)")
    channels: int = _setting(3, help="input channels", choices=(1, 3))
    stage_num: tuple[int, int, int] = _setting((3, 3, 3), help="SSR-Net's bins per stage (three stages)",
                                               metavar="K")
    lambda_d: float = _setting(1.0, help="SSR-Net's dynamic-range factor λ_d")
    bn_momentum: float = _setting(0.99, help="batch-norm moving-average momentum")
    workers: int = _setting(2, help="threads for the input pipeline")
    init: str | None = _setting(None, help="start from the weights of this model (.keras, legacy .h5, or a bundled "
                                           "model: full, lite): fine-tuning")
    precision: str = _setting("float32", help="float32 (default) or bfloat16: conv streams in mixed bfloat16, "
                                              "faster on CPUs with bf16 units (see headpose bench); checkpoints "
                                              "are float32 either way", choices=("float32", "bfloat16"))
    width: float = _setting(1.0, help="channel multiplier of the network (1.0: the original SSR-Net-MT; 0.5: the "
                                      "lite variant, about 2x faster per crop)")
    grey: float = _setting(0.0, help="augmentation: fraction of crops made grey (luminance in all three "
                                     "channels)")
    infrared: float = _setting(0.0, help="augmentation: fraction made near-infrared-like (red channel, gamma, "
                                         "flat contrast)")
    erase: float = _setting(0.0, help="augmentation: fraction of crops with one random rectangle (a fiftieth to a "
                                      "fifth of the crop) blanked in one colour: occlusion")
    degrade: float = _setting(0.0, help="augmentation: fraction of crops given camera defects (motion blur, "
                                        "low resolution, sensor noise, JPEG; headpose.augment.degrade_crop)")
    balance: float = _setting(0.0, help="yaw balance: each epoch draws as many samples as there are, each with a "
                                        "chance proportional to (count of its 10° |yaw| bin)^-BALANCE (0: every "
                                        "sample once, the original; 1: every bin equally often)")
    ema: float = _setting(0.0, help="Polyak averaging: validate and save best.keras with an exponential moving "
                                    "average of the weights, this momentum per step (e.g. 0.999); training "
                                    "steps and last.keras keep the raw weights. 0: off, the original")
    freeze_streams: bool = _setting(False, help="train only the stage heads (1x1 convs, dense layers) of the --init "
                                                "model; its two conv streams and their batch-norm statistics stay "
                                                "fixed: adapting to a little new data, with faster steps")

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise HeadposeError(f"{source}: unknown setting(s) {', '.join(sorted(unknown))}")
        d = dict(d)
        for key in ("data", "val"):
            if isinstance(d.get(key), str):
                d[key] = [d[key]]
        if isinstance(d.get("lr_decay_epochs"), int) and not isinstance(d["lr_decay_epochs"], bool):
            d["lr_decay_epochs"] = [d["lr_decay_epochs"]]
        hints = typing.get_type_hints(cls)
        for key, value in d.items():
            if value is not None and not _fits(value, hints[key]):
                raise HeadposeError(f"{source}: {key} = {value!r} is not {_type_words(hints[key])}")
        cfg = cls(**d)
        cfg.lr_decay_epochs = tuple(cfg.lr_decay_epochs)
        cfg.stage_num = tuple(cfg.stage_num)
        return cfg


def _fits(value, tp) -> bool:
    """Whether a TOML / JSON value suits the annotation ``tp`` of a :class:`TrainConfig` field (an int is a
    float; a bool is neither; a list or tuple of the element type for list / tuple fields)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(tp) if a is not type(None))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis and len(value) != len(args):
            return False
        return all(_fits(v, args[0]) for v in value)
    if tp is bool:
        return isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, tp) and not (tp is int and isinstance(value, bool))


def _type_words(tp) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_words(a) for a in typing.get_args(tp) if a is not type(None))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple):
        n = f"{len(args)} " if origin is tuple and args and args[-1] is not Ellipsis else ""
        return f"a list of {n}{_PLURAL.get(args[0], str(args[0]))}"
    return {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


_PLURAL = {int: "whole numbers", float: "numbers", bool: "booleans", str: "strings"}


class ArraySet:
    """Several ``.npz`` datasets seen as one, without concatenating them in memory.

    Samples with any angle outside ±99° are dropped (counted in ``dropped``). ``take(idx)`` gathers a batch,
    ``labels(idx)`` only its poses; both in the order of ``idx``.
    """

    def __init__(self, paths: list[str]):
        if not paths:
            raise HeadposeError("no training data given (--data A.npz [B.npz ...])")
        self.images, self.poses, rows, parts = [], [], [], []
        self.dropped = 0
        self.sizes = set()
        for k, p in enumerate(paths):
            img, pose = load_npz(p)
            if self.images and img.shape[1:] != self.images[0].shape[1:]:
                raise HeadposeError(f"{p}: crops are {img.shape[1:]}, but {paths[0]} has {self.images[0].shape[1:]}; "
                                    "pack all sets with the same --size")
            keep = np.flatnonzero(angle_filter(pose))
            self.dropped += len(pose) - len(keep)
            self.images.append(img)
            self.poses.append(pose)
            rows.append(keep)
            parts.append(np.full(len(keep), k, np.int32))
            self.sizes.add((img.shape[1], img.shape[3]))
        self.row = np.concatenate(rows)
        self.file = np.concatenate(parts)
        if len(self.row) == 0:
            raise HeadposeError(f"{', '.join(map(str, paths))}: no samples left after the ±99° filter")

    def __len__(self) -> int:
        return len(self.row)

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(idx)
        files, rows = self.file[idx], self.row[idx]
        imgs = np.empty((len(idx), *self.images[0].shape[1:]), np.uint8)
        for k in np.unique(files):
            at = np.flatnonzero(files == k)
            at = at[np.argsort(rows[at])]  # read each file in row order (memory-mapped: sequential access)
            imgs[at] = self.images[k][rows[at]]
        return imgs, self.labels(idx)

    def labels(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx)
        files, rows = self.file[idx], self.row[idx]
        out = np.empty((len(idx), 3), np.float32)
        for k in np.unique(files):
            at = files == k
            out[at] = self.poses[k][rows[at]]
        return out

    def subset(self, idx: np.ndarray) -> ArraySet:
        sub = object.__new__(ArraySet)
        sub.images, sub.poses, sub.sizes, sub.dropped = self.images, self.poses, self.sizes, 0
        sub.row, sub.file = self.row[idx], self.file[idx]
        return sub


def yaw_balance(yaw: np.ndarray, power: float, bin_deg: float = 10.0) -> np.ndarray:
    """Sampling probabilities (summing to 1) that even out the |yaw| distribution: each sample's chance is
    proportional to (number of samples in its ``bin_deg`` bin of |yaw|)^-``power``. A sample without a known
    yaw (NaN) counts in a bin of its own."""
    yaw = np.asarray(yaw, np.float64)
    bins = np.where(np.isnan(yaw), -1, np.floor(np.abs(np.nan_to_num(yaw)) / bin_deg)).astype(int)
    _, inverse, counts = np.unique(bins, return_inverse=True, return_counts=True)
    w = counts[inverse].astype(np.float64) ** -float(power)
    return w / w.sum()


def batches(keras, data: ArraySet, cfg: TrainConfig, size: int, train: bool, first_epoch: int = 0):
    """The batch pipeline of :func:`train` over ``data``: a ``keras.utils.PyDataset`` whose item ``i`` is batch
    ``i`` as (x float32 B×``size``×``size``×``cfg.channels``, :func:`headpose.runtime.prepare_input`; y float32
    B×3 [yaw, pitch, roll]). ``train=True``: batches of ``cfg.batch_size``, the last partial one dropped, in an
    order shuffled anew at each epoch's end (from ``cfg.seed`` and the epoch; with ``cfg.balance`` drawn with
    the chances of :func:`yaw_balance`), augmented when ``cfg.augment``
    (:func:`headpose.augment.augment_batch`, seeded by ``cfg.seed``, ``.epoch`` and ``i``); ``train=False``: the
    samples in order, in batches of at least 256. ``first_epoch``: the epoch it starts at (a resumed run's), so
    every epoch has the order and augmentation it has in a run that was never stopped. ``cfg.workers`` threads
    fill batches ahead when Keras iterates it; indexing it builds one batch on the calling thread (what
    ``headpose bench`` times)."""
    from headpose.augment import augment_batch
    from headpose.runtime import prepare_input

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=max(1, cfg.workers), use_multiprocessing=False)
            self.rng = np.random.default_rng(cfg.seed)
            self.order = np.arange(len(data))
            self.bs = cfg.batch_size if train else max(cfg.batch_size, 256)
            self.chance = (yaw_balance(data.labels(np.arange(len(data)))[:, 0], cfg.balance)
                           if train and cfg.balance else None)
            self.epoch = first_epoch - 1
            if train:
                self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(data) / self.bs) if not train else len(data) // self.bs

        def __getitem__(self, i):
            idx = self.order[i * self.bs : (i + 1) * self.bs]
            x, y = data.take(idx)
            if train and cfg.augment:
                rng = np.random.default_rng((cfg.seed, self.epoch, i))
                x, y = augment_batch(x, y, rng, rotate=cfg.rotate, grey=cfg.grey, infrared=cfg.infrared,
                                     erase=cfg.erase, degrade=cfg.degrade)
            return prepare_input(x, cfg.channels, size), y

        def on_epoch_end(self):
            self.epoch += 1
            if train:
                rng = np.random.default_rng((cfg.seed, self.epoch))
                if self.chance is not None:
                    self.order = rng.choice(len(data), len(data), p=self.chance)
                else:
                    self.order = rng.permutation(len(data))

    return Batches()


def _atomic_save(model, path: Path):
    with atomic_path(path) as tmp:
        model.save(tmp)


def plot_history(csv_path: Path, png_path: Path):
    """Loss and MAE per epoch (train and validation) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    ep = [int(r["epoch"]) for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(ep, [float(r["loss"]) for r in rows], label="train loss (MAE, augmented)")
    ax[0].plot(ep, [float(r["val_mae"]) for r in rows], label="validation MAE")
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("degrees")
    ax[0].legend()
    ax[0].grid(alpha=0.3)
    for k in ("yaw", "pitch", "roll"):
        ax[1].plot(ep, [float(r[f"val_{k}"]) for r in rows], label=f"val {k}")
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("MAE (degrees)")
    ax[1].legend()
    ax[1].grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_path(png_path) as tmp:
            fig.savefig(tmp, format="png", dpi=90)
    finally:
        plt.close(fig)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether the CPU has bfloat16 arithmetic (x86 ``avx512_bf16`` or ``amx_bf16``, Arm ``bf16``), read from
    ``cpuinfo`` (the text of ``/proc/cpuinfo`` when not given); None where that cannot be told."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags |= set(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"}) if flags else None


def set_training_threads(keras) -> None:
    """On the TensorFlow backend, one core per conv stream (:func:`headpose.tfkernels.set_stream_threads`);
    call before TensorFlow starts."""
    if keras.backend.backend() == "tensorflow":
        from headpose.tfkernels import set_stream_threads

        set_stream_threads()


def fuse_batchnorm(keras, model):
    """On the TensorFlow backend, ``model``'s batch norms train with the fused kernel
    (:func:`headpose.tfkernels.fuse_batchnorm`: same maths, ~1.6× faster steps). Returns ``model``."""
    if keras.backend.backend() == "tensorflow":
        from headpose.tfkernels import fuse_batchnorm as fuse

        fuse(model)
    return model


def averaged_in(model) -> list | None:
    """With an optimizer that keeps a moving average of the weights (``use_ema``, :attr:`TrainConfig.ema`): put
    the average into ``model``'s trainable variables and return their raw values (to assign back); else None."""
    opt = model.optimizer
    if not getattr(opt, "use_ema", False) or not opt.iterations.numpy():
        return None
    raw = [v.numpy() for v in model.trainable_variables]
    opt.finalize_variable_values(model.trainable_variables)
    return raw


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train (or resume) a run; returns the path of the best checkpoint."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from headpose.model import build_model, dtype_policy, freeze_streams, masked_mae, model_width, to_float32

    dtype_policy(cfg.precision)  # an unknown --precision fails before any data is read
    if not 0.0 <= cfg.ema < 1.0:
        raise HeadposeError(f"--ema must be in [0, 1), got {cfg.ema}")
    for name in ("grey", "infrared", "erase", "degrade"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise HeadposeError(f"--{name} is a fraction of the crops, between 0 and 1: got {getattr(cfg, name)}")
    if cfg.grey + cfg.infrared > 1.0:
        raise HeadposeError(f"--grey {cfg.grey} and --infrared {cfg.infrared} share the crops: together at most 1")
    if cfg.freeze_streams and not (cfg.init or resume):
        raise HeadposeError("--freeze-streams keeps the conv streams of a trained model: give it with --init")
    if cfg.precision == "bfloat16" and keras.backend.backend() == "tensorflow" and cpu_has_bf16() is False:
        print("note: this CPU has no bfloat16 arithmetic (avx512_bf16, amx_bf16): on it --precision bfloat16 "
              "trains slower than float32 (README, Measured; headpose bench times both)", file=sys.stderr)
    out = Path(cfg.out)
    state_path = out / "state.json"
    start_epoch, best = 0, math.inf
    if resume:
        if not state_path.exists() or not (out / "last.keras").exists():
            raise HeadposeError(f"{out}: nothing to resume (no state.json / last.keras: it stopped before its first "
                                "epoch ended); run the same train command again to start it anew")
        state = json.loads(state_path.read_text())
        start_epoch, best = int(state["epoch"]), float(state["best_val_mae"])
        if start_epoch >= cfg.epochs:
            print(f"{out}: already trained for {start_epoch} of {cfg.epochs} epochs")
            return out / "best.keras"
    out.mkdir(parents=True, exist_ok=True)
    set_training_threads(keras)  # before TensorFlow starts its thread pools
    keras.utils.set_random_seed(cfg.seed + start_epoch)

    data = ArraySet(cfg.data)
    if cfg.val:
        val = ArraySet(cfg.val)
    elif cfg.val_split:
        if not 0 < cfg.val_split < 1:
            raise HeadposeError(f"--val-split must be between 0 and 1, got {cfg.val_split}")
        perm = np.random.default_rng(cfg.seed).permutation(len(data))
        n_val = max(1, int(round(len(data) * cfg.val_split)))
        data, val = data.subset(perm[n_val:]), data.subset(perm[:n_val])
    else:
        raise HeadposeError("give validation data: --val V.npz or --val-split 0.2")
    size = cfg.size or next(iter(data.sizes))[0]
    if len(data) < cfg.batch_size:
        raise HeadposeError(f"only {len(data)} training samples, fewer than one batch of {cfg.batch_size}")
    print(f"train: {len(data)} samples ({data.dropped} dropped outside ±99°), "
          f"validation: {len(val)} ({val.dropped} dropped), input {size}×{size}×{cfg.channels}")
    write_atomic(out / "config.json", json.dumps(asdict(cfg), indent=2))

    if resume:
        model = keras.saving.load_model(out / "last.keras", compile=True)
    else:
        model = build_model(size, cfg.channels, cfg.stage_num, cfg.lambda_d, cfg.bn_momentum,
                            precision=cfg.precision, width=cfg.width)
        if cfg.init:
            from headpose.model import load_model

            src = load_model(cfg.init)
            if src.input_shape != model.input_shape:
                raise HeadposeError(f"{cfg.init}: input {src.input_shape} does not match {model.input_shape}")
            if [w.shape for w in src.weights] != [w.shape for w in model.weights]:
                why = (f"a width {model_width(src):g} network, this run is width {model_width(model):g} (--width)"
                       if model_width(src) != model_width(model) else
                       "its weights do not fit this run's network (stage_num?)")
                raise HeadposeError(f"{cfg.init}: {why}")
            model.set_weights(src.get_weights())
            print(f"starting from the weights of {cfg.init}")
        if cfg.freeze_streams:
            n = freeze_streams(model)
            print(f"conv streams frozen ({n:,} weights); training the stage heads only")
        # XLA off on TensorFlow (slower on CPUs, `headpose bench`); Keras' default elsewhere: without it the JAX
        # backend (a GPU machine's) runs each step eagerly, op by op
        adam = keras.optimizers.Adam(cfg.lr, use_ema=cfg.ema > 0, ema_momentum=cfg.ema)
        model.compile(optimizer=adam, loss=masked_mae,
                      jit_compile=False if keras.backend.backend() == "tensorflow" else "auto")

    fuse_batchnorm(keras, model)
    twin = to_float32(model)  # best.keras is float32 whatever the training precision

    train_seq = batches(keras, data, cfg, size, train=True, first_epoch=start_epoch)
    val_seq = batches(keras, val, cfg, size, train=False)
    y_val = val.labels(np.arange(len(val)))

    def lr_at(epoch: int) -> float:
        return cfg.lr * cfg.lr_decay ** sum(epoch >= e for e in cfg.lr_decay_epochs)

    hist_csv = out / "history.csv"
    cols = ["epoch", "lr", "loss", "val_mae", "val_yaw", "val_pitch", "val_roll", "samples_per_s", "seconds"]

    class RunKeeper(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.optimizer.learning_rate.assign(lr_at(epoch))
            train_seq.epoch = epoch
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            nonlocal best
            dt = time.perf_counter() - self.t0
            n_seen = len(train_seq) * train_seq.bs
            raw = averaged_in(self.model)
            pred = self.model.predict(val_seq, verbose=0)
            mae = nan_mae(pred, y_val)
            rate = n_seen / dt
            row = {"epoch": epoch + 1, "lr": lr_at(epoch), "loss": logs["loss"], "val_mae": float(mae.mean()),
                   "val_yaw": float(mae[0]), "val_pitch": float(mae[1]), "val_roll": float(mae[2]),
                   "samples_per_s": rate, "seconds": dt}
            new = not hist_csv.exists()
            with open(hist_csv, "a", newline="") as f:
                w = csv.DictWriter(f, cols)
                if new:
                    w.writeheader()
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
            improved = mae.mean() < best
            if improved:
                best = float(mae.mean())
                if twin is not self.model:
                    twin.set_weights(self.model.get_weights())
                _atomic_save(twin, out / "best.keras")
            if raw is not None:  # back to the raw weights: training and last.keras go on from them
                for v, value in zip(self.model.trainable_variables, raw):
                    v.assign(value)
            _atomic_save(self.model, out / "last.keras")
            write_atomic(state_path, json.dumps({"epoch": epoch + 1, "best_val_mae": best}))
            plot_history(hist_csv, out / "history.png")
            print(f"epoch {epoch + 1}/{cfg.epochs}: val MAE {mae.mean():.2f}° (yaw {mae[0]:.2f}, pitch {mae[1]:.2f}, "
                  f"roll {mae[2]:.2f}){' *best*' if improved else ''}  {rate:.0f} samples/s")

    if resume:
        print(f"resuming {out} at epoch {start_epoch + 1}")
    model.fit(train_seq, epochs=cfg.epochs, initial_epoch=start_epoch, callbacks=[RunKeeper()],
              verbose=1 if sys.stdout.isatty() else 2)
    print(f"best validation MAE {best:.2f}° → {out / 'best.keras'}")
    return out / "best.keras"


def read_config(path: str | os.PathLike) -> dict:
    """The settings of a TOML file (keys: :class:`TrainConfig` fields); one-line errors for a file that cannot
    be read and for unknown keys."""
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise HeadposeError(f"{path}: cannot read config ({e})") from None
    TrainConfig.from_dict(d, str(path))  # unknown keys fail here, naming the file
    return d


def _merged(settings: dict | None, config: str | os.PathLike | None) -> dict:
    d = read_config(config) if config else {}
    d.update({k: v for k, v in (settings or {}).items() if v is not None})
    return d


def config_from(settings: dict | None = None, config: str | os.PathLike | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from the TOML file ``config`` overlaid by ``settings`` (field → value; ``None``
    means not given: the file's value or the default stays)."""
    return TrainConfig.from_dict(_merged(settings, config), str(config) if config else "settings")


def train_from_settings(settings: dict | None = None, config: str | os.PathLike | None = None,
                        resume: str | os.PathLike | None = None) -> Path:
    """``headpose train``: train with the TOML file ``config`` overlaid by ``settings`` (:func:`config_from`),
    or, with ``resume``, continue that run folder with its own settings (``config.json``; of ``settings`` only
    ``epochs`` applies). Returns the path of the best checkpoint."""
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    if resume:
        run = Path(resume)
        cfg_file = run / "config.json"
        if not cfg_file.exists():
            raise HeadposeError(f"{run}: not a training run (no config.json)")
        cfg = TrainConfig.from_dict(json.loads(cfg_file.read_text()), str(cfg_file))
        cfg.out = str(run)  # the folder named, wherever the run was first written (moved, copied, another cwd)
        if settings.get("epochs"):
            cfg.epochs = settings["epochs"]
        ignored = sorted(set(settings) - {"epochs"}) + (["config"] if config else [])
        if ignored:
            print(f"note: --resume continues {run} with its own settings ({cfg_file}); ignored: "
                  + ", ".join(f"--{k.replace('_', '-')}" for k in ignored), file=sys.stderr)
        return train(cfg, resume=True)
    d = _merged(settings, config)
    if settings.get("val_split") is not None:  # the flag wins over the file's validation sets
        d.pop("val", None)
    elif settings.get("val") is not None:
        d.pop("val_split", None)
    if not d.get("data"):
        raise HeadposeError("no training data: give --data A.npz [B.npz ...] or a --config with data = [...]")
    if not d.get("out"):
        raise HeadposeError("no run folder: give --out runs/NAME")
    held = [f for f in ("state.json", "last.keras", "best.keras") if (Path(d["out"]) / f).exists()]
    if held:
        raise HeadposeError(f"{d['out']}: already holds a training run ({', '.join(held)}): --resume {d['out']} "
                            "continues it; give another --out for a new run")
    return train(TrainConfig.from_dict(d, str(config) if config else "settings"))


def average_weights(paths: list, out) -> Path:
    """``headpose soup --model A.keras B.keras ... --out S.keras``: a model whose every weight (batch-norm statistics
    included) is the mean of the same weight in ``paths`` — a uniform "model soup" (Wortsman et al., 2022).
    It only makes sense for runs fine-tuned from one starting model (the shipped recipe's trajectories all start
    from the previous shipped model): their weights stay close enough for the average to be a model, often a
    better one than each, at the cost of one. The architectures must match (same layers, same shapes)."""
    from headpose.model import load_model

    if len(paths) < 2:
        raise HeadposeError("soup: give at least two models to average")
    out = Path(out)
    if out.suffix != ".keras":
        raise HeadposeError(f"{out}: the soup is written as a .keras model (name it .keras)")
    soup = load_model(paths[0])
    first = soup.get_weights()
    sums = [w.astype(np.float64) for w in first]
    for path in paths[1:]:  # one model in memory at a time beside the soup
        ws = load_model(path).get_weights()
        if [w.shape for w in ws] != [w.shape for w in first]:
            raise HeadposeError(f"{path}: not the same network as {paths[0]} (layers or widths differ)")
        for s, w in zip(sums, ws):
            s += w
    soup.set_weights([(s / len(paths)).astype(w.dtype) for s, w in zip(sums, first)])
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(soup, out)
    print(f"{out}: mean of {len(paths)} models' weights")
    return out
