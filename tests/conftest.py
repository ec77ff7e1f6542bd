"""Shared test fixtures: real data from ../shared, read in place (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEADPOSE_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
PEERS = SHARED / "peers"
SEED_H5 = PEERS / "seed_head_pose_v2.h5"
SEED_TFLITE = PEERS / "seed_head_pose_v2_fp32.tflite"


def pytest_configure(config):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


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
