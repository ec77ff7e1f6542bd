"""``headpose predict SOURCE... --engine ray``: the local engine's pipeline on Ray Data, past one machine.

Needs the ``[ray]`` extra (``pip install -e ".[ray]"``); Ray is imported here only, so the core install does
not need it. The stages of one streamed Ray Data dataset:

1. **list** (driver): the sources as the local engine lists them (:func:`headpose.sources.list_folder`), as
   items: one per image, one per chunk of ``chunk_frames`` frames of a video (so one long video spreads over
   the workers). Items already in the store (below) are left out: a re-run resumes.
2. **read** (Ray tasks, ``map``): an item's frames, decoded (``read_image``; a video chunk seeks to its first
   frame and reads up to ``chunk_frames`` frames; the last chunk reads to the end).
3. **detect + pose** (actor pool, ``map_batches(PoseActor, concurrency=...)``): each actor loads BlazeFace and
   the pose model once (:class:`headpose.estimator.HeadPoseEstimator`) and runs
   :meth:`~headpose.estimator.HeadPoseEstimator.predict_many` on the frames of ``batch_size`` items, then writes
   their rows as one Parquet file of the store, atomically (:func:`headpose.io.atomic_path`). The file's
   metadata lists the items it covers.
4. **report** (driver): unreadable images named as they come back; the JSON Lines report (the local engine's
   objects, in its order) assembled from the store; the summary and skip report of the local engine.

The store is the ``--parquet`` folder (else ``OUT.jsonl.parts/`` beside the report): one row per face with
``source, frame, face, time_s, box [x0, y0, x1, y1], score, yaw, pitch, roll, model_sha256`` (an image or frame
with no face: one row with nulls, as in the JSON report); ``pandas.read_parquet(DIR)`` reads it whole. It keeps
``_headpose.json`` with the settings (model hash, detector, score threshold, chunk size): a re-run with other
settings is refused rather than mixed in.

Faults: a worker process that dies mid-batch loses no rows: Ray restarts the actor and retries its batch
(Ray Data's actor pools: ``max_restarts=-1``, ``max_task_retries=-1``), and a batch's file appears only when
complete; a read task that dies is retried by Ray (``max_retries``). Retries are bounded by the store, not by
Ray: an actor notes each item it starts in ``STORE/.tries/`` (a byte per try); a retried batch is redone one
item at a time, and an item whose worker has died :data:`MAX_TRIES` times on it (an input that crashes the
decoder or the runtime every time) is left out and reported as skipped (:data:`WORKER_DIED`), the rest done.
A new run starts the counts afresh, so it tries such items again. For tests, the environment variable
``HEADPOSE_RAY_CRASH_ONCE=FLAGFILE`` makes the first actor that gets a batch create ``FLAGFILE`` and exit its
process (``os._exit``), once, before it writes the batch's rows; ``HEADPOSE_RAY_CRASH_AFTER_WRITE=FLAGFILE`` does
the same just after it writes them (the retry must not write them again); ``HEADPOSE_RAY_CRASH_ON=TEXT`` makes an
actor exit whenever it starts an item whose source contains ``TEXT``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from collections import Counter
from itertools import groupby
from pathlib import Path

import cv2
import numpy as np

from headpose.errors import HeadposeError
from headpose.estimator import FacePose, HeadPoseEstimator
from headpose.io import atomic_path, write_atomic
from headpose.outputs import format_summary, report_rows
from headpose.runtime import default_flip, resolve_model
from headpose.sources import (
    BROKEN,
    OTHER,
    TRUNCATED,
    UNREADABLE,
    list_folder,
    media_kind,
    open_video,
    read_image,
    video_fps,
)
from headpose.track import FaceTracker

CHUNK_FRAMES = 32  # frames per video item
BATCH_SIZE = 4  # items per actor call (4 images, or 4 video chunks: 128 frames)
READ_CPUS = 0.25  # logical CPUs of a decoding task; an actor takes the rest of a core
CRASH_ENV = "HEADPOSE_RAY_CRASH_ONCE"
CRASH_AFTER_WRITE_ENV = "HEADPOSE_RAY_CRASH_AFTER_WRITE"
CRASH_ON_ENV = "HEADPOSE_RAY_CRASH_ON"
TRIES_DIR = ".tries"  # in the store: one file per item an actor has started, one byte per try
MAX_TRIES = 3  # tries of an item whose worker process dies before it is skipped
WORKER_DIED = f"its worker process died on each of {MAX_TRIES} tries"
SETTINGS_FILE = "_headpose.json"  # files starting with "_" or "." are not data to Parquet readers
ITEMS_KEY = b"headpose_items"
COLUMNS = ("source", "frame", "face", "time_s", "box", "score", "yaw", "pitch", "roll", "model_sha256")


def schema():
    """The store's Parquet schema (one row per face; a face-less image or frame: one row of nulls)."""
    import pyarrow as pa

    f64 = pa.float64()
    return pa.schema([("source", pa.string()), ("frame", pa.int64()), ("face", pa.int32()), ("time_s", f64),
                      ("box", pa.list_(f64, 4)), ("score", f64), ("yaw", f64), ("pitch", f64), ("roll", f64),
                      ("model_sha256", pa.string())])


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# Stage 2 and 3: read, detect + pose (run on the workers)
# ----------------------------------------------------------------------------------------------------------
def read_item(item: dict) -> dict:
    """An item's frames as one N×H×W×3 array (N = 0: an unreadable image or a chunk past the video's end)."""
    frames: list[np.ndarray] = []
    if item["kind"] == "image":
        img = read_image(Path(item["path"]))
        if img is not None:
            frames.append(img)
    else:
        cap = cv2.VideoCapture(item["path"])
        try:
            if item["start"]:
                cap.set(cv2.CAP_PROP_POS_FRAMES, item["start"])
            while item["stop"] < 0 or item["start"] + len(frames) < item["stop"]:
                ok, f = cap.read()
                if not ok or f is None:
                    break
                frames.append(f)
        finally:
            cap.release()
    if frames and all(f.shape == frames[0].shape for f in frames):
        stacked = np.stack(frames)
    else:
        stacked = np.zeros((0, 1, 1, 3), np.uint8)
    return {**item, "n": len(frames), "frames": stacked}


class PoseActor:
    """One per worker slot: the estimator (detector and pose model, loaded once), then batches of items."""

    def __init__(self, model: str, model_sha256: str, detector: str, min_score: float, store: str,
                 crash_flag: str | None = None, flip: bool | None = None, crash_on: str | None = None,
                 crash_after_write: str | None = None, fallback: bool | None = None):
        self.est = HeadPoseEstimator(model, detector=detector, min_score=min_score, threads=1, flip=flip,
                                     fallback=fallback)
        self.sha = model_sha256
        self.store = Path(store)
        self.crash_flag = crash_flag
        self.crash_on = crash_on
        self.crash_after_write = crash_after_write
        found = file_sha256(self.est.model_path)
        if found != model_sha256:
            raise HeadposeError(f"{self.est.model_path}: this worker's model file differs from the driver's "
                                f"(sha256 {found[:12]} vs {model_sha256[:12]}): install the same files on every node")

    @staticmethod
    def _maybe_crash(flag: str | None):
        """Exit the process if ``flag`` names a file not yet there (creating it): once per run, for tests."""
        if not flag:
            return
        try:
            fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(3)  # the process dies mid-batch, as a killed or out-of-memory worker would

    def __call__(self, batch: dict) -> dict:
        n = len(batch["source"])
        # unreadable images have no frames, no rows and no tries: the driver reports them from what is returned
        todo = [i for i in range(n) if not (batch["kind"][i] == "image" and int(batch["n"][i]) == 0)]
        items = {i: [str(batch["source"][i]), int(batch["start"][i])] for i in todo}
        keys = {i: item_key(*it) for i, it in items.items()}
        tries = self.store / TRIES_DIR
        if not any((tries / k).exists() for k in keys.values()):  # a first try: the batch at once
            self._run_items(batch, todo, list(keys.values()))
            return _batch_out(batch)
        # a retry (a worker died on this batch): one item at a time, each at most MAX_TRIES
        if part_path(self.store, list(items.values())).exists():
            return _batch_out(batch)  # the whole batch was written before its worker died
        for i in todo:
            if part_path(self.store, [items[i]]).exists():
                continue  # written before the worker died
            if tries_of(self.store, keys[i]) >= MAX_TRIES:
                continue  # given up: the driver reports it (WORKER_DIED)
            self._run_items(batch, [i], [keys[i]])
        return _batch_out(batch)

    def _run_items(self, batch: dict, idx, keys: list[str]):
        """Pose of the frames of the batch's items ``idx``; their rows as one part file."""
        tries = self.store / TRIES_DIR
        tries.mkdir(exist_ok=True)
        for k in keys:
            with open(tries / k, "ab") as f:
                f.write(b"x")
        if self.crash_on and any(self.crash_on in str(batch["source"][i]) for i in idx):
            os._exit(3)  # an input that kills its worker every time
        frames = [f for i in idx for f in batch["frames"][i][: int(batch["n"][i])]]
        poses = iter(list(self.est.predict_many(frames, batch=16, workers=1)))
        self._maybe_crash(self.crash_flag)  # with the batch computed, before its rows are written
        rows, items = {c: [] for c in COLUMNS}, []
        for i in idx:
            source, start, count = str(batch["source"][i]), int(batch["start"][i]), int(batch["n"][i])
            items.append([source, start, count])
            fps = float(batch["fps"][i])
            for k in range(count):
                frame = start + k
                time_s = frame / fps if batch["kind"][i] == "video" else None
                faces = next(poses)
                for j, p in enumerate(faces or [None]):
                    rows["source"].append(source)
                    rows["frame"].append(frame)
                    rows["face"].append(None if p is None else j)
                    rows["time_s"].append(time_s)
                    rows["box"].append(None if p is None else [float(v) for v in p.box])
                    for c in ("score", "yaw", "pitch", "roll"):
                        rows[c].append(None if p is None else float(getattr(p, c)))
                    rows["model_sha256"].append(self.sha)
        if items:
            write_part(self.store, items, rows)
            self._maybe_crash(self.crash_after_write)  # written, not yet returned


def _batch_out(batch: dict) -> dict:
    return {"source": batch["source"], "start": batch["start"], "kind": batch["kind"], "n": batch["n"]}


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj).encode()).hexdigest()[:20]


def item_key(source: str, start: int) -> str:
    """A file name for an item (a source and its first frame)."""
    return _digest([source, int(start)])


def tries_of(store: Path, key: str) -> int:
    """How many times actors have started the item ``key`` in this run (the size of its file in ``.tries``)."""
    try:
        return (store / TRIES_DIR / key).stat().st_size
    except FileNotFoundError:
        return 0


def part_path(store: Path, items: list) -> Path:
    """The part file of ``items`` ([source, start, ...]): named from the items, so a retried batch rewrites it."""
    return store / f"part-{_digest([it[:2] for it in items])}.parquet"


def write_part(store: Path, items: list, rows: dict) -> Path:
    """One Parquet file of the store for the rows of ``items`` ([source, start, frames read]), written atomically
    (:func:`part_path`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(rows, schema=schema()).replace_schema_metadata({ITEMS_KEY: json.dumps(items).encode()})
    path = part_path(store, items)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


# ----------------------------------------------------------------------------------------------------------
# Stage 1 and 4: list, report (the driver)
# ----------------------------------------------------------------------------------------------------------
def _store_items(store: Path) -> dict[tuple[str, int], tuple[int, Path]]:
    """(source, start) → (frames read, part file) for every item the store holds."""
    import pyarrow.parquet as pq

    done = {}
    for part in sorted(store.glob("part-*.parquet")):
        try:
            meta = pq.read_schema(part).metadata or {}
            items = json.loads(meta[ITEMS_KEY])
        except Exception as e:  # any unreadable file is named
            raise HeadposeError(f"{part}: not a part file of this store ({e}); remove it") from None
        for source, start, count in items:
            done[(source, int(start))] = (int(count), part)
    return done


def _open_store(store: Path, settings: dict):
    store.mkdir(parents=True, exist_ok=True)
    path = store / SETTINGS_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise HeadposeError(f"{path}: unreadable ({e})") from None
        changed = sorted(k for k in settings if old.get(k) != settings[k])
        if changed:
            raise HeadposeError(f"{store}: holds rows made with other settings ({', '.join(changed)}): give "
                                "another output folder, or delete it to start again")
    else:
        write_atomic(path, json.dumps(settings, indent=1) + "\n")


def _list_sources(sources: list[str], chunk_frames: int, skip) -> tuple[list[dict], dict]:
    """Items in the local engine's order, and the videos' frame counts {source: total}."""
    items, videos = [], {}
    single = len(sources) == 1 and not Path(sources[0]).is_dir()

    def add_video(p: Path, explicit: bool):
        opened = open_video(p)
        if opened is None:
            if single:
                what = "broken video (OpenCV cannot open or decode it)" if explicit else \
                    "neither an image nor a video OpenCV can read"
                raise HeadposeError(f"{p}: {what}")
            skip(str(p), BROKEN)
            return
        cap, _ = opened
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = video_fps(cap)
        cap.release()
        videos[str(p)] = total
        n_chunks = max(1, -(-total // chunk_frames))
        for k in range(n_chunks):
            stop = -1 if k == n_chunks - 1 else (k + 1) * chunk_frames  # the last chunk reads to the end
            items.append({"source": str(p), "path": str(p.resolve()), "kind": "video", "start": k * chunk_frames,
                          "stop": stop, "fps": fps})

    def add_image(p: Path):
        items.append({"source": str(p), "path": str(p.resolve()), "kind": "image", "start": 0, "stop": 1,
                      "fps": 0.0})

    for src in sources:
        path = Path(src)
        if not path.exists():
            raise HeadposeError(f"{src}: no such file or folder (give images, folders or videos)")
        if path.is_dir():
            files = list_folder(path)
            for p in files:
                if media_kind(p) == "other":
                    skip(str(p), OTHER)
            media = [p for p in files if media_kind(p) != "other"]
            if not media:
                raise HeadposeError(f"{path}: no images or videos in this folder (or below it)")
            for p in media:
                if media_kind(p) == "image":
                    add_image(p)
            for p in media:
                if media_kind(p) == "video":
                    add_video(p, True)
        elif media_kind(path) == "image":
            if single and read_image(path) is None:
                raise HeadposeError(f"{path}: unreadable image (corrupt, truncated or not an image OpenCV can "
                                    "decode)")
            add_image(path)
        elif media_kind(path) == "video" or read_image(path) is None:
            add_video(path, media_kind(path) == "video")
        else:
            add_image(path)  # an image under another extension, as the local engine reads it
    unique = {(it["source"], it["start"]): it for it in items}  # a file given twice is done once
    return list(unique.values()), videos


def _check_reachable(address: str | None, timeout: float = 5.0):
    """A HOST:PORT (or ray://HOST:PORT) address that does not answer is named at once (Ray itself retries for
    minutes)."""
    import socket

    host, _, port = (address or "").removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or no address
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise HeadposeError(f"--address {address}: no Ray cluster answers there ({e}); start one with "
                            "ray start --head") from None


def _init_ray(address: str | None):
    """Ray connected: to the cluster at ``address``, or to a fresh local instance with this machine's cores.
    Returns whether this call started it (and so should shut it down)."""
    import ray

    _check_reachable(address)
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        else:
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR",
                     log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise HeadposeError(f"--address {address}: no Ray cluster there ({str(e).splitlines()[0]})") from None
    return True


def predict_ray(sources, model=None, json_out=None, parquet=None, address: str | None = None,
                min_score: float = 0.5, detector: str = "full", flip: bool | None = None, smooth: bool = False,
                fallback: bool | None = None, concurrency: int | None = None,
                batch_size: int = BATCH_SIZE, chunk_frames: int = CHUNK_FRAMES, quiet: bool = False) -> dict:
    """``headpose predict SOURCE... --engine ray``: pose of every face in images, folders and videos on Ray.

    ``json_out``: the local engine's JSON Lines report; ``parquet``: the store folder (one row per face); one of
    them is needed. ``address``: a running Ray cluster (``ray start --head`` prints it; ``"auto"``: the one on
    this node); without it a local Ray instance with this machine's cores is started and stopped.
    ``flip``, ``fallback``: as :class:`~headpose.estimator.HeadPoseEstimator`. ``concurrency``: actors
    (default: one per CPU of the cluster); ``batch_size``: items per actor call; ``chunk_frames``: frames per
    video item. Returns the local engine's summary (counts, ``skipped``,
    ``written``) plus ``resumed`` (items found in the store) and ``store``.
    """
    if not json_out and not parquet:
        raise HeadposeError("--engine ray writes rows to --json OUT.jsonl and/or --parquet DIR: give one")
    try:
        import pyarrow.parquet  # noqa: F401
        import ray  # noqa: F401
    except ImportError as e:
        raise HeadposeError(f'--engine ray needs the [ray] extra ({e.name} is missing): pip install -e ".[ray]"') \
            from None
    sources = [str(s) for s in ([sources] if isinstance(sources, (str, os.PathLike)) else sources)]
    if not sources:
        raise HeadposeError("give at least one image, folder or video")
    _check_reachable(address)  # before listing a large archive
    model_path = resolve_model(model if model is not None else "full")
    sha = file_sha256(model_path)
    flip = default_flip(model_path) if flip is None else bool(flip)
    store = Path(parquet) if parquet else Path(json_out).with_name(Path(json_out).name + ".parts")
    settings = {"model_sha256": sha, "detector": detector, "min_score": float(min_score), "flip": bool(flip),
                "chunk_frames": int(chunk_frames)}
    if fallback is not None:  # only when given, so that stores written before the option still resume
        settings["fallback"] = bool(fallback)
    skipped: list[tuple[str, str]] = []

    def skip(name: str, reason: str):
        skipped.append((name, reason))
        if reason != OTHER:
            print(f"headpose: skipped {name}: {reason}", file=sys.stderr)

    items, videos = _list_sources(sources, max(1, int(chunk_frames)), skip)
    _open_store(store, settings)
    done = _store_items(store)
    todo = [it for it in items if (it["source"], it["start"]) not in done]
    shutil.rmtree(store / TRIES_DIR, ignore_errors=True)  # each run counts its own tries
    started = False
    if todo:
        started = _init_ray(address)
        try:
            _run(todo, str(model_path), sha, detector, min_score, flip, store, concurrency, batch_size, quiet, skip,
                 fallback)
        finally:
            if started:
                import ray

                ray.shutdown()
        done = _store_items(store)
        for it in todo:  # the items given up after MAX_TRIES deaths of their worker
            key = (it["source"], it["start"])
            if key not in done and tries_of(store, item_key(*key)) >= MAX_TRIES:
                skip(it["source"], WORKER_DIED + (f" (frames from {it['start']})" if it["kind"] == "video" else ""))
    return _report(items, videos, done, store, json_out, skipped, resumed=len(items) - len(todo), quiet=quiet,
                   smooth=smooth)


def _run(todo, model_path, sha, detector, min_score, flip, store: Path, concurrency, batch_size, quiet, skip,
         fallback=None):
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = not quiet
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR if quiet else logging.WARNING)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = max(1, int(concurrency or cpus))
    blocks = min(len(todo), max(4 * actors, len(todo) // max(1, int(batch_size))))  # a read task ~ a batch
    ds = ray.data.from_items(todo, override_num_blocks=blocks)
    # Per core: an actor (0.75 CPU) and a decoding task (0.25), so the actor pool never starves the readers.
    ds = ds.map(read_item, num_cpus=READ_CPUS)
    # Ray Data's actor pools restart a dead actor and retry its batch (max_restarts=-1, max_task_retries=-1).
    ds = ds.map_batches(PoseActor, batch_size=max(1, int(batch_size)), num_cpus=1 - READ_CPUS,
                        compute=ray.data.ActorPoolStrategy(size=actors),
                        fn_constructor_kwargs={"model": model_path, "model_sha256": sha, "detector": detector,
                                               "min_score": float(min_score), "store": str(store.resolve()),
                                               "crash_flag": os.environ.get(CRASH_ENV), "flip": bool(flip),
                                               "crash_on": os.environ.get(CRASH_ON_ENV),
                                               "crash_after_write": os.environ.get(CRASH_AFTER_WRITE_ENV),
                                               "fallback": fallback})
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for source, kind, n in zip(batch["source"], batch["kind"], batch["n"]):
                if kind == "image" and int(n) == 0:
                    skip(str(source), UNREADABLE)
    except Exception as e:
        cause = _headpose_cause(e)
        if cause is None:
            raise
        raise HeadposeError(cause) from None
    for tmp in store.glob(".tmp-*"):  # left by a worker killed while writing (its batch was redone)
        tmp.unlink(missing_ok=True)


def _headpose_cause(e: BaseException) -> str | None:
    """The message of a HeadposeError raised on a worker, from the Ray exception that carries it, or None."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e) is HeadposeError:
            return str(e)
        # Ray's errors carry the worker's traceback as text (an actor that died in __init__ keeps only that).
        mark = f"{HeadposeError.__module__}.{HeadposeError.__name__}: "
        lines = [ln.split(mark, 1)[1] for ln in str(e).splitlines() if mark in ln]
        if lines:
            return lines[-1]
        cause = getattr(e, "cause", None)
        e = cause if isinstance(cause, BaseException) else (e.__cause__ or e.__context__)
    return None


def _report(items, videos, done, store: Path, json_out, skipped, resumed: int, quiet: bool,
            smooth: bool = False) -> dict:
    """Counts, truncated videos, the JSON Lines report in the local engine's order, the summary."""
    import pyarrow.parquet as pq

    order = {}
    for it in items:
        order.setdefault(it["source"], len(order))
    parts = sorted({done[(it["source"], it["start"])][1] for it in items if (it["source"], it["start"]) in done})
    rows = []
    for part in parts:
        for r in pq.read_table(part).to_pylist():
            if r["source"] in order:
                rows.append(r)
    rows.sort(key=lambda r: (order[r["source"]], r["frame"], r["face"] or 0))
    counts = Counter()
    frames_read = Counter()
    for it in items:
        if (it["source"], it["start"]) in done:
            counts["images"] += it["kind"] == "image"
            frames_read[it["source"]] += done[(it["source"], it["start"])][0]
    for source, total in videos.items():
        n = frames_read[source]
        counts["videos"] += 1
        counts["frames"] += n
        if total and n < 0.98 * total - 1:
            skipped.append((source, f"{TRUNCATED} (frame {n} of {total})"))
            print(f"headpose: skipped {source}: {skipped[-1][1]}", file=sys.stderr)
    counts["faces"] = sum(r["face"] is not None for r in rows)
    counts["no_face"] = sum(r["face"] is None for r in rows)
    written = []
    if json_out:
        lines = []
        tracker, current = None, None
        for (source, frame), group in groupby(rows, key=lambda r: (r["source"], r["frame"])):
            group = list(group)
            time_s = group[0]["time_s"]
            poses = [FacePose(tuple(r["box"]), r["score"], r["yaw"], r["pitch"], r["roll"])
                     for r in group if r["face"] is not None]
            if time_s is not None:  # a video frame: the local engine's tracker, on the frames in order
                if source != current:
                    tracker, current = FaceTracker(smooth=smooth), source
                poses = tracker.update(poses, frame, time_s)
            lines += [json.dumps(o) + "\n" for o in report_rows(source, frame, poses, time_s)]
        written.append(str(write_atomic(json_out, "".join(lines))))
    written.append(str(store))
    if not (counts["images"] or counts["videos"]):
        raise HeadposeError(f"{', '.join(sorted(order))}: none of the images/videos could be read")
    summary = {**{k: counts[k] for k in ("images", "videos", "frames", "faces", "no_face")}, "skipped": skipped,
               "written": written, "resumed": resumed, "store": str(store)}
    if not quiet:
        print(format_summary(summary))
        print(f"rows (Parquet): {store}" + (f"; {resumed} items were already there (resumed)" if resumed else ""))
    return summary


# ----------------------------------------------------------------------------------------------------------
# Benchmark: python -m headpose.engine_ray bench
# ----------------------------------------------------------------------------------------------------------
def bench(frames_dir, n_frames: int = 600, workdir=None, address: str | None = None) -> dict:
    """Frames/s of the local engine and of ``--engine ray`` on one clip: ``n_frames`` 640×480 frames cycling
    through the PNG frames of ``frames_dir`` (e.g. ``../shared/data/biwi_frames/01``), written as an mp4v clip
    under ``workdir``. Ray: a fresh local instance (or the cluster at ``address``), timed with its start-up
    (``ray_cold``) and again with the instance up (``ray_warm``: actor start-up and model loading included)."""
    import tempfile
    import time

    import ray

    from headpose.predict import predict_source

    pngs = sorted(Path(frames_dir).glob("*.png"))
    if not pngs:
        raise HeadposeError(f"{frames_dir}: no .png frames to make the clip from")
    work = Path(workdir or tempfile.mkdtemp(prefix="headpose-bench-ray-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip.mp4"
    images = [cv2.imread(str(p)) for p in pngs]
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (w, h))
    for i in range(n_frames):
        writer.write(images[i % len(images)])
    writer.release()
    res = {"frames": n_frames, "size": f"{w}x{h}", "cpus": os.cpu_count()}
    t = time.perf_counter()
    s = predict_source(clip, json_out=work / "local.jsonl", quiet=True)
    res["local"] = s["frames"] / (time.perf_counter() - t)
    for name in ("ray_cold", "ray_warm"):
        store = work / f"{name}.parts"
        if store.exists():
            for f in store.iterdir():
                f.unlink()
        t = time.perf_counter()
        if name == "ray_cold":
            _init_ray(address)
        s = predict_ray([clip], json_out=work / f"{name}.jsonl", parquet=store, quiet=True)
        res[name] = s["frames"] / (time.perf_counter() - t)
    ray.shutdown()
    print(f"{n_frames} frames {w}x{h}, {res['cpus']} CPUs: local engine {res['local']:.0f} frames/s; "
          f"--engine ray {res['ray_cold']:.0f} frames/s with the Ray start-up, {res['ray_warm']:.0f} with Ray up")
    return res


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(prog="python -m headpose.engine_ray", description="frames/s: local vs ray")
    ap.add_argument("command", choices=("bench",))
    ap.add_argument("--frames-dir", default="../shared/data/biwi_frames/01")
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--workdir")
    ap.add_argument("--address")
    a = ap.parse_args()
    bench(a.frames_dir, a.frames, a.workdir, a.address)
