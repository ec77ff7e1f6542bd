"""Shared test fixtures: real data from ../shared, read in place (never copied into the repo).

Everything a test writes lives under pytest's tmp paths: no test reads git-ignored ``runs/`` folders or a model
cached in the system temp folder by an earlier run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEADPOSE_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
PEERS = SHARED / "peers"
SEED_H5 = PEERS / "seed_head_pose_v2.h5"
SEED_TFLITE = PEERS / "seed_head_pose_v2_fp32.tflite"
BIWI_FRAMES = DATA / "biwi_frames" / "01"
AFLW2000 = DATA / "aflw2000"


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def pytest_configure(config):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    # TensorFlow's thread pools get the sizes `headpose train` asks for (tfkernels.set_stream_threads) whichever
    # test starts TensorFlow first: the variables are read when TensorFlow starts, so in-process training does not
    # depend on the order the tests run in.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, _cpus() // 2)))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "2" if _cpus() >= 2 else "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.exists():
        pytest.fail(f"shared data not found at {DATA} (set HEADPOSE_SHARED)")
    return DATA


def link_biwi(root: Path, seqs, every: int) -> Path:
    """A folder of symlinks to every ``every``-th BIWI crop (and its label) of the given sequences."""
    for seq in seqs:
        (root / seq).mkdir(parents=True, exist_ok=True)
        for img in sorted((DATA / "biwi_crops" / seq).glob("*_rgb.jpg"))[::every]:
            for f in (img, img.with_name(img.name.replace("_rgb.jpg", "_pose.bin"))):
                (root / seq / f.name).symlink_to(f)
    return root


def link_aflw(root: Path, names) -> Path:
    """A folder of symlinks to the named AFLW2000 images and their .mat labels (a small slice, read in place)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        for ext in (".jpg", ".mat"):
            (root / f"{name}{ext}").symlink_to(AFLW2000 / f"{name}{ext}")
    return root


def aflw_pose(name: str) -> np.ndarray:
    """[yaw, pitch, roll] degrees of an AFLW2000 image, straight from its .mat (Pose_Para = pitch, yaw, roll)."""
    import scipy.io

    return np.degrees(scipy.io.loadmat(AFLW2000 / f"{name}.mat")["Pose_Para"][0, [1, 0, 2]])


def biwi_frames() -> tuple[list[Path], list[np.ndarray], np.ndarray]:
    """The 10 full BIWI frames: files, BGR images, converted labels."""
    import cv2

    from headpose.data.labels import read_biwi_bin

    files = sorted(BIWI_FRAMES.glob("frame_*_rgb.png"))
    assert len(files) == 10, f"expected the 10 BIWI frames in {BIWI_FRAMES}"
    labels = np.array([read_biwi_bin(str(f).replace("_rgb.png", "_pose.bin")) for f in files])
    return files, [cv2.imread(str(f)) for f in files], labels


def json_rows(path: Path) -> list[dict]:
    """The objects of a JSON Lines file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def run_cli(*args, timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    """``python -m headpose ARGS`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "headpose", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def write_video(path: Path, images, fps: int = 10) -> Path:
    """An .mp4 of the given BGR frames (all of one size)."""
    import cv2

    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for im in images:
        writer.write(im)
    writer.release()
    return path


#: The keys of every ``headpose predict --json`` row.
ROW_KEYS = {"source", "frame", "time_s", "track", "box", "score", "yaw", "pitch", "roll"}


@pytest.fixture(scope="module")
def est(pose_model):
    """A HeadPoseEstimator with the tests' pose model."""
    from headpose.estimator import HeadPoseEstimator

    return HeadPoseEstimator(pose_model)


@pytest.fixture(scope="module")
def frames():
    """The 10 BIWI frames: files and BGR images."""
    files, images, _ = biwi_frames()
    return files, images


@pytest.fixture(scope="session")
def biwi_npz(tmp_path_factory, shared_data) -> dict[str, Path]:
    """Small real BIWI packs, split by sequence: train (8 sequences, every 4th frame), val (04 and 11)."""
    from headpose.data.prepare import prepare

    base = tmp_path_factory.mktemp("biwi")
    out = {}
    for name, seqs, every in (("train", ("01", "02", "05", "07", "08", "10", "13", "14"), 4),
                              ("val", ("04", "11"), 5)):
        src = link_biwi(base / f"src_{name}", seqs, every)
        assert prepare("biwi", src, base / f"{name}.npz", workers=2)
        out[name] = base / f"{name}.npz"
    return out


@pytest.fixture(scope="session")
def pose_model(tmp_path_factory) -> Path:
    """The pose model for tests that do not judge accuracy: the bundled one when this build has it, else a freshly
    initialised SSR-Net-MT exported to TFLite under this session's tmp path (never a cache from another run)."""
    from headpose.estimator import DEFAULT_MODEL

    if DEFAULT_MODEL.exists():
        return DEFAULT_MODEL
    pytest.importorskip("keras", reason="no bundled model, and keras is needed to make a test model")
    import keras

    from headpose.export import to_tflite
    from headpose.model import build_model

    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("pose_model") / "random.tflite"
    out.write_bytes(to_tflite(build_model(64, 3)))
    return out


#: the soft stagewise fusion's ops, which the int8 export keeps in float (export.FLOAT_OPS)
FUSION_OPS = ("DIV", "SUM", "MUL", "ADD", "SUB")


def tflite_op_inputs(path) -> list[tuple[str, set[str], str]]:
    """(op name, dtypes of its tensor inputs, name of its first output) for every op of a .tflite, read without
    delegates (XNNPACK would hide ops inside its own nodes)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    return [(op["op_name"], {np.dtype(tensors[i]["dtype"]).name for i in op["inputs"] if i >= 0},
             tensors[op["outputs"][0]]["name"]) for op in it._get_ops_details()]


def assert_int8_with_float_fusion(path, narrow: bool = False):
    """The int8 export's layout: every op of the fusion float; the convolutions and dense layers of the first two
    blocks of each stream (``export.FLOAT_LAYERS``; three for a ``narrow`` network, ``FLOAT_LAYERS_NARROW``) and of
    the stage heads float, every other one int8."""
    from headpose.export import FLOAT_LAYERS, FLOAT_LAYERS_NARROW, float_nodes

    ops = tflite_op_inputs(path)
    fusion = [(name, types) for name, types, _ in ops if name in FUSION_OPS]
    assert len(fusion) >= 20, ops
    assert all("float32" in types and "int8" not in types for _, types in fusion), fusion
    convs = [(name, types, out) for name, types, out in ops
             if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    kept = set(float_nodes([out for _, _, out in convs], FLOAT_LAYERS_NARROW if narrow else FLOAT_LAYERS))
    blocks = 3 if narrow else 2
    floats = [c for c in convs if c[2] in kept]
    ints = [c for c in convs if c[2] not in kept]
    # each stream: `blocks` blocks × (depthwise, pointwise); each of the 3 stages: 5 dense heads
    assert len(floats) == 2 * blocks * 2 + 3 * 5, [c[2] for c in floats]
    assert all("int8" not in types for _, types, _ in floats), floats
    assert len(ints) >= 20 and all("int8" in types for _, types, _ in ints), ints
