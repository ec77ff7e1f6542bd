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
