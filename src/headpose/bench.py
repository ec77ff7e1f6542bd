"""``headpose bench``: how fast the pose model, the whole pipeline and training run on this machine.

Rows (each measured for a fixed time, best of 3 rounds):

* **pose**: crops/s of the pose model in LiteRT float and int8 at 1 thread (batch 1 and batch 64), in ONNX Runtime
  (batch 64) and in Keras (batch 256). ``--peer X.tflite`` (e.g. the seed's) is timed the same way in the same
  run, and our rates are printed as ratios of its rate.
* **end_to_end**: frames/s of detect + crop + pose (:meth:`HeadPoseEstimator.predict_many`, as it reads by
  default: with mirror averaging for the full model, ``flip`` in the rows) on 640×480 frames with one face
  (built from the demo photo, so nothing is downloaded), with the full- and short-range detector,
  with 1 and 2 detection workers; and milliseconds per stage on one thread, to see where the time goes (the
  detector's steps :meth:`~headpose.detect.FaceDetector.letterbox`, ``run_network`` and ``decode``, the crop, the
  pose model on one crop).
* **training**: samples/s of ``headpose.train``'s batch pipeline alone (:func:`headpose.train.batches`: read +
  augment + convert), of the model's training step alone (in-memory batches: Keras' batch norm against the fused
  kernel ``headpose train`` uses, batch 32 to 256, float32 and bfloat16, XLA), and of ``model.fit`` on the real
  pipeline as ``headpose train`` runs it (defaults, and batch 128 bfloat16).

Every rate is given twice: per wall-clock second (``per_s``) and per CPU-second of this process (``per_cpu_s``,
CPU time of the measuring thread for single-thread rows). On a machine shared with other jobs the wall-clock
rate drops with the load and the CPU-time rate much less; the load average is recorded before and after.
The process is pinned to 2 CPUs when it may use more, as the targets are for 2 cores.

Models: the pose model (default: the bundled ``.tflite``) and its siblings ``NAME_int8.tflite``, ``NAME.onnx``
and ``NAME.keras`` beside it. A missing int8/ONNX sibling is exported on the fly from the ``.keras`` into a
temp folder when Keras is installed (not with ``--quick``); rows that cannot run are skipped with a note.
Only the Keras rows, the exports and the training rows import Keras/TensorFlow.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from headpose.errors import HeadposeError
from headpose.io import write_atomic

TARGETS = {"pose_per_thread_vs_peer": 1.5, "end_to_end_frames_per_s": 200.0, "training_samples_per_s": 1000.0}


# ----------------------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------------------
def measure(fn, items: int, seconds: float, rounds: int | None = None, threads: str = "thread") -> dict:
    """Call ``fn`` (which processes ``items`` items) repeatedly for ``seconds`` per round after one warm-up
    call; the best round's rate per wall-clock second and per CPU-second (``threads``: "thread" = CPU time
    of this thread, "process" = of the whole process, for multi-threaded work)."""
    clock = time.thread_time if threads == "thread" else time.process_time
    rounds = rounds or (1 if seconds < 0.5 else 3)
    fn()
    best_wall, best_cpu = 0.0, 0.0
    for _ in range(rounds):
        n = 0
        c0, t0 = clock(), time.perf_counter()
        while True:
            fn()
            n += items
            dt = time.perf_counter() - t0
            if dt >= seconds:
                break
        dc = max(clock() - c0, 1e-9)
        best_wall, best_cpu = max(best_wall, n / dt), max(best_cpu, n / dc)
    return {"per_s": round(best_wall, 1), "per_cpu_s": round(best_cpu, 1)}


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cpus_total": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__}
    for mod, key in (("ai_edge_litert", "litert"), ("onnxruntime", "onnxruntime")):
        from importlib.metadata import PackageNotFoundError, version

        try:
            info[key] = version({"ai_edge_litert": "ai-edge-litert"}.get(mod, mod))
        except PackageNotFoundError:
            info[key] = None
    return info


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _pin(cores: int = 2):
    """Restrict this process to ``cores`` CPUs (Linux); returns the previous CPU set (or None)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    before = os.sched_getaffinity(0)
    if len(before) > cores:
        os.sched_setaffinity(0, sorted(before)[:cores])
        return before
    return None


def _keras_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("keras") is not None and importlib.util.find_spec("tensorflow") is not None


# ----------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------
def bench_frames(n: int = 16, width: int = 640, height: int = 480) -> list[np.ndarray]:
    """``n`` distinct ``width``×``height`` BGR frames with one face each: the demo photo scaled to the frame
    height, at a different place in every frame, on a grey background."""
    from headpose.demo import demo_photo

    photo = demo_photo()
    h = height
    w = round(photo.shape[1] * h / photo.shape[0])
    person = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        f = np.full((height, width, 3), 90 + 5 * (i % 8), np.uint8)
        x = round((width - w) * i / max(n - 1, 1))
        f[:, x : x + w] = person
        frames.append(f)
    return frames


def bench_crops(n: int = 64) -> np.ndarray:
    """``n`` real 64×64 face crops (float32) from the bench frames, as the pipeline makes them."""
    from headpose.detect import FaceDetector, crop_face

    det = FaceDetector("full", threads=1)
    crops = []
    for f in bench_frames(8):
        faces = det.detect(f)
        if faces:
            crops.append(crop_face(f, faces[0].box))
    if not crops:
        raise HeadposeError("the detector found no face in the bench frames")
    return np.stack([crops[i % len(crops)] for i in range(n)]).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------
def _siblings(model: Path) -> dict:
    stem = model.stem
    for suffix in ("_int8", "_fp32", "_float"):
        stem = stem.removesuffix(suffix)
    d = model.parent
    found = {"keras": d / f"{stem}.keras", "int8": d / f"{stem}_int8.tflite", "onnx": d / f"{stem}.onnx",
             "float": d / f"{stem}.tflite"}
    out = {k: p for k, p in found.items() if p.exists()}
    if model.suffix == ".keras":
        out["keras"] = model
    elif model.suffix == ".tflite" and "float" not in out:
        out["float"] = model
    return out


def _export(keras_path: Path, fmt: str, workdir: Path, notes: list) -> Path | None:
    """Export ``keras_path`` for timing only (int8 calibrated on the bench crops)."""
    from headpose import export as ex

    out = workdir / {"tflite": "model.tflite", "tflite-int8": "model_int8.tflite", "onnx": "model.onnx"}[fmt]
    try:
        from headpose.model import load_model

        model = load_model(keras_path)
        if fmt == "onnx":
            blob = ex.to_onnx(model)
        else:
            blob = ex.to_tflite(model, int8=fmt == "tflite-int8", calib_images=bench_crops(64))
        out.write_bytes(blob)
        notes.append(f"{out.name}: exported on the fly from {keras_path} for this run (speed only)")
        return out
    except Exception as e:  # noqa: BLE001
        notes.append(f"{fmt}: on-the-fly export from {keras_path} failed ({type(e).__name__}: {e})")
        return None


# ----------------------------------------------------------------------------------------------------------
# Parts
# ----------------------------------------------------------------------------------------------------------
def bench_pose(models: dict, peer, seconds: float, notes: list, extra: dict | None = None) -> tuple[list, dict | None]:
    from headpose.runtime import LiteRTRunner, OnnxRunner

    crops = bench_crops(256)
    rows = []

    def row(name, runner, batch, threads, clock="thread"):
        r = measure(lambda: runner(crops[:batch], batch_size=batch), batch, seconds,
                    threads="thread" if threads == 1 and clock == "thread" else "process")
        rows.append({"name": name, "file": str(getattr(runner, "path", "") or ""), "threads": threads,
                     "batch": batch, **r})
        return rows[-1]

    for kind, missing in (("float", "no .tflite model"),
                          ("int8", "no NAME_int8.tflite beside the model (and none exported)")):
        if kind not in models:
            notes.append(f"litert {kind}: {missing}")
            continue
        r = LiteRTRunner(models[kind], threads=1)
        for batch in (1, 64):
            row(f"litert {kind}", r, batch, 1)
    for name, path in (extra or {}).items():  # other bundled models (the lite ones), LiteRT 1 thread
        r = LiteRTRunner(path, threads=1)
        for batch in (1, 64):
            row(name, r, batch, 1)
    if "onnx" in models:
        try:
            for t in (1, 2):
                r = OnnxRunner(models["onnx"], threads=t)
                r.path = models["onnx"]
                row("onnxruntime", r, 64, t)
        except HeadposeError as e:
            notes.append(f"onnxruntime: {e}")
    else:
        notes.append("onnxruntime: no NAME.onnx beside the model (and none exported)")
    if "keras" in models:
        if _keras_available():
            from headpose.runtime import KerasRunner

            r = KerasRunner(models["keras"])
            r.path = models["keras"]
            row("keras", r, 256, 2)
        else:
            notes.append("keras: not installed (pip install 'headpose-ssr[train]'); Keras row skipped")
    else:
        notes.append("keras: no NAME.keras beside the model")

    peer_res = None
    if peer:
        p = LiteRTRunner(peer, threads=1)
        pr = measure(lambda: p(crops[:1], batch_size=1), 1, seconds)
        peer_res = {"file": str(peer), "threads": 1, "batch": 1, "dynamic_batch": p.dynamic_batch, **pr}
        for r in rows:
            if r["threads"] == 1:
                r["vs_peer"] = round(r["per_cpu_s"] / max(pr["per_cpu_s"], 1e-9), 3)
                r["vs_peer_wall"] = round(r["per_s"] / max(pr["per_s"], 1e-9), 3)
    return rows, peer_res


def bench_end_to_end(model, seconds: float, quick: bool) -> tuple[list, dict]:
    from headpose.detect import FaceDetector, crop_face
    from headpose.estimator import HeadPoseEstimator

    frames = bench_frames(16)
    rows, stages = [], {}
    for det_name in ("full", "short"):
        est = HeadPoseEstimator(model, detector=det_name, threads=1)
        found = [len(est.predict(f)) for f in frames]
        for workers in (1, 2):

            def run(est=est, workers=workers):
                for _ in est.predict_many(iter(frames), batch=16, workers=workers):
                    pass

            r = measure(run, len(frames), seconds, threads="process")
            rows.append({"detector": det_name, "workers": workers, "flip": est.flip, "frame": "640x480",
                         "faces_per_frame": found[0],
                         "frames_with_one_face": sum(n == 1 for n in found), "frames": len(frames), **r})
        # Where the time goes, one thread, ms per frame / face.
        det = FaceDetector(det_name, threads=1)
        f = frames[0]
        h, w = f.shape[:2]
        x, side, pad = det.letterbox(f)
        raw = det.run_network(x)
        box = det.detect(f)[0].box

        s = 0.1 if quick else 1.0
        crop = crop_face(f, box)

        def ms(fn, s=s):
            return round(1000 / measure(fn, 1, s)["per_cpu_s"], 3)

        st = {"detect_ms": ms(lambda det=det, f=f: det.detect(f)),
              "letterbox_ms": ms(partial(det.letterbox, f)),
              "detector_invoke_ms": ms(partial(det.run_network, x)),
              "decode_and_nms_ms": ms(partial(det.decode, *raw, side, pad, w, h)),
              "crop_ms": ms(lambda f=f, box=box: crop_face(f, box)),
              "pose_b1_ms": ms(lambda est=est, crop=crop: est.predict_crops(crop[None]))}
        stages[det_name] = st
    return rows, stages


def _FitClock(keras, budget_s: float = 20.0):
    """A callback timing ``model.fit`` from the start of its 2nd batch (the 1st traces the step function);
    it stops the fit after ``budget_s`` seconds (and at least 3 timed batches)."""

    class FitClock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1:
                self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            self.t1, self.c1, self.batches = time.perf_counter(), time.process_time(), batch
            if batch >= 3 and self.t1 - self.t0 > budget_s:  # slow configurations (XLA on CPU) stop early
                self.model.stop_training = True

        def rates(self, batch_size: int) -> dict:
            n = self.batches * batch_size  # batches 1..last
            return {"per_s": round(n / (self.t1 - self.t0), 1), "per_cpu_s": round(n / (self.c1 - self.c0), 1),
                    "timed_batches": self.batches}

    return FitClock()


def bench_training(quick: bool, notes: list) -> list:
    if not _keras_available():
        notes.append("training: keras/tensorflow not installed (pip install 'headpose-ssr[train]'); skipped")
        return []
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from headpose import train as tr
    from headpose.data.npz import save_npz
    from headpose.model import build_model
    from headpose.runtime import prepare_input

    rows = []
    rng = np.random.default_rng(0)
    n = 256 if quick else 4096
    images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    poses = rng.uniform(-60, 60, (n, 3)).astype(np.float32)
    steps = 5 if quick else 40
    with tempfile.TemporaryDirectory(prefix="headpose-bench-") as d:
        npz = save_npz(Path(d) / "random.npz", images, poses)
        data = tr.ArraySet([str(npz)])
        cfg = tr.TrainConfig(data=[str(npz)], out=str(Path(d) / "run"))

        # 1. The input pipeline alone, on this thread: read + augment + convert.
        seq = tr.batches(keras, data, cfg, 64, train=True)
        k = [0]

        def one_batch():
            seq[k[0] % len(seq)]
            k[0] += 1

        r = measure(one_batch, cfg.batch_size, 0.3 if quick else 2.0)
        rows.append({"what": "input pipeline (read + augment + convert), 1 thread", "batch": cfg.batch_size, **r})

        # 2. The training step alone, on in-memory batches (not with --quick): Keras' batch norm vs the fused
        #    kernel that `headpose train` uses, batch size, bfloat16, XLA.
        x = prepare_input(images[: 8 * 256], 3, 64)
        y = poses[: 8 * 256]
        # (batch, precision, fused batch norm, XLA, width)
        configs = [] if quick else [(32, "float32", False, False, 1.0), (32, "float32", True, False, 1.0),
                                    (128, "float32", True, False, 1.0), (32, "bfloat16", True, False, 1.0),
                                    (128, "bfloat16", True, False, 1.0), (256, "bfloat16", True, False, 1.0),
                                    (32, "float32", False, True, 1.0), (32, "float32", True, False, 0.5),
                                    (128, "float32", True, False, 0.5)]
        for bs, precision, fused, xla, width in configs:
            model = build_model(64, 3, precision=precision, width=width)
            if fused:
                tr.fuse_batchnorm(keras, model)
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae", jit_compile=xla)
            k = min(steps, len(x) // bs) * bs
            clock = _FitClock(keras)
            model.fit(x[:k], y[:k], batch_size=bs, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
            rows.append({"what": "training step only (in-memory batches)", "batch": bs, "precision": precision,
                         "batch_norm": "fused" if fused else "keras", "xla": xla, "width": width,
                         **clock.rates(bs)})

        # 3. model.fit on the real pipeline, as `headpose train` runs it (augmentation, 2 workers): the
        #    defaults (batch 32, float32) and the fastest settings.
        fits = [(32, "float32", 1.0)] if quick else [(32, "float32", 1.0), (128, "bfloat16", 1.0),
                                                     (32, "float32", 0.5), (128, "float32", 0.5)]
        for bs, precision, width in fits:
            cfg.batch_size, cfg.precision = bs, precision
            model = tr.fuse_batchnorm(keras, build_model(64, 3, precision=precision, width=width))
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae", metrics=["mae"], jit_compile=False)
            seq = tr.batches(keras, data, cfg, 64, train=True)
            clock = _FitClock(keras)
            model.fit(seq, epochs=1, steps_per_epoch=min(steps, len(seq)), verbose=0, callbacks=[clock])
            rows.append({"what": "headpose train's model.fit (pipeline + step)", "batch": bs,
                         "precision": precision, "width": width, "workers": cfg.workers, **clock.rates(bs)})
    import tensorflow as tf

    rows.append({"what": "tensorflow threads (0: TensorFlow's default, one per CPU)",
                 "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                 "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                 "tensorflow": tf.__version__, "keras": keras.__version__})
    return rows


# ----------------------------------------------------------------------------------------------------------
# Entry
# ----------------------------------------------------------------------------------------------------------
def bench(json_out=None, peer=None, model=None, quick: bool = False, parts=("pose", "end_to_end", "training"),
          quiet: bool = False) -> dict:
    """Run the benchmark; print a table; write JSON if asked; return the results."""
    from headpose.estimator import DEFAULT_MODEL, default_model
    from headpose.runtime import BUNDLED, WEIGHTS, resolve_model

    model = resolve_model(model) if model else default_model()
    if not model.exists():
        raise HeadposeError(f"{model}: no such model file")
    if peer and not Path(peer).exists():
        raise HeadposeError(f"{peer}: no such peer model file")
    if peer and Path(peer).suffix.lower() != ".tflite":
        raise HeadposeError(f"{peer}: the peer must be a .tflite file")
    seconds = 0.1 if quick else 1.0
    notes: list[str] = []
    res = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
           "machine": machine_info(), "quick": quick, "model": str(model), "targets": TARGETS,
           "load_before": _load()}
    before = _pin(2)
    if "training" in parts and _keras_available():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        from headpose.train import set_training_threads

        set_training_threads(keras)  # as `headpose train` sets them, before TensorFlow starts
    res["machine"]["cpus_used"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        with tempfile.TemporaryDirectory(prefix="headpose-bench-") as work:
            models = _siblings(model)
            if "keras" in models and not quick and _keras_available():
                for key, fmt in (("float", "tflite"), ("int8", "tflite-int8"), ("onnx", "onnx")):
                    if key not in models:
                        p = _export(models["keras"], fmt, Path(work), notes)
                        if p:
                            models[key] = p
            elif quick and "keras" in models:
                missing = [k for k in ("float", "int8", "onnx") if k not in models]
                if missing:
                    notes.append(f"--quick: no on-the-fly export of {', '.join(missing)}")
            res["models"] = {k: str(v) for k, v in models.items()}
            float_model = models.get("float", model)
            took = res["took_s"] = {}
            t = time.perf_counter()
            if "pose" in parts:
                extra = {}
                if model == DEFAULT_MODEL:  # the bundled models: time the lite ones beside the default
                    lite = {f"lite litert {kind}": WEIGHTS / BUNDLED[name]
                            for name, kind in (("lite", "float"), ("lite-int8", "int8"))}
                    extra = {k: p for k, p in lite.items() if p.exists()}
                res["pose"], res["peer"] = bench_pose(models, peer, seconds, notes, extra)
                took["pose"], t = round(time.perf_counter() - t, 1), time.perf_counter()
            if "end_to_end" in parts:
                res["end_to_end"], res["stages_ms"] = bench_end_to_end(float_model, seconds, quick)
                took["end_to_end"], t = round(time.perf_counter() - t, 1), time.perf_counter()
            if "training" in parts:
                res["training"] = bench_training(quick, notes)
                took["training"] = round(time.perf_counter() - t, 1)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
    res["load_after"] = _load()
    res["notes"] = notes
    if not quiet:
        print(format_results(res))
    if json_out:
        write_atomic(json_out, json.dumps(res, indent=2) + "\n")
    return res


def format_results(res: dict) -> str:
    m = res["machine"]
    head = (f"headpose bench, {res['date']}, {m['cpu']} ({m.get('cpus_used')} of {m['cpus_total']} CPUs used), "
            f"load average {res['load_before']} → {res['load_after']}{'  [quick]' if res['quick'] else ''}")
    lines = [head, "rates: per wall-clock second / per CPU-second of this process"]
    if res.get("pose") is not None:
        lines.append(f"\npose model {Path(res['model']).stem}, crops/s")
        for r in res["pose"]:
            vs = f"   ×{r['vs_peer']:.2f} peer (CPU), ×{r['vs_peer_wall']:.2f} (wall)" if "vs_peer" in r else ""
            lines.append(f"  {r['name']:<22} threads {r['threads']}  batch {r['batch']:>3}  "
                         f"{r['per_s']:>9.0f} / {r['per_cpu_s']:>9.0f}{vs}")
        if res.get("peer"):
            p = res["peer"]
            lines.append(f"  {'peer':<22} threads 1  batch   1  {p['per_s']:>9.0f} / {p['per_cpu_s']:>9.0f}   "
                         f"{Path(p['file']).name}")
    if res.get("end_to_end") is not None:
        lines.append("\nend to end (detect + crop + pose), 640×480 frames with one face, frames/s")
        for r in res["end_to_end"]:
            lines.append(f"  detector {r['detector']:<5}  workers {r['workers']}  {r['per_s']:>7.0f} / "
                         f"{r['per_cpu_s']:>7.0f}   (one face found in {r['frames_with_one_face']}/{r['frames']})")
        for k, s in res.get("stages_ms", {}).items():
            lines.append(f"  {k}: " + ", ".join(f"{n[:-3]} {v:.2f} ms" for n, v in s.items()))
    if res.get("training") is not None:
        lines.append("\ntraining, samples/s")
        for r in res["training"]:
            if "per_s" in r:
                extra = " ".join(x for x in (r.get("width", 1.0) != 1.0 and f"lite ×{r['width']:g}",
                                             r.get("precision"), r.get("batch_norm") and f"{r['batch_norm']} BN",
                                             "XLA" if r.get("xla") else None) if x)
                lines.append(f"  {r['what']:<46} batch {r['batch']:>3} {extra:<26} {r['per_s']:>6.0f} / "
                             f"{r['per_cpu_s']:>6.0f}")
            else:
                lines.append(f"  {r['what']}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "what"))
    if res["notes"]:
        lines.append("\nnotes:")
        lines.extend(f"  - {n}" for n in res["notes"])
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    bench(json_out=sys.argv[1] if len(sys.argv) > 1 else None)
