"""The model shipped inside the package: present, accurate on held-out BIWI sequences, and its exports agree."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA, link_biwi

from headpose.predict import DEFAULT_MODEL, HeadPoseEstimator, model_card

WEIGHTS = DEFAULT_MODEL.parent
HELD_OUT = ("04", "11", "17", "22")  # never seen in training (split by sequence)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    from headpose.data.prepare import prepare

    d = tmp_path_factory.mktemp("heldout")
    src = link_biwi(d / "src", HELD_OUT, every=8)
    assert prepare("biwi", src, d / "heldout.npz", workers=2)
    return d / "heldout.npz"


def test_bundled_files_and_card():
    for name in ("headpose_ssrnet_mt.tflite", "headpose_ssrnet_mt.keras", "headpose_ssrnet_mt_int8.tflite",
                 "headpose_ssrnet_mt.onnx"):
        assert (WEIGHTS / name).stat().st_size > 300_000, name  # 234k weights (int8: a byte each)
    card = model_card(DEFAULT_MODEL)
    assert card["validation"]["sequences"] == list(HELD_OUT)
    assert 0.0 < card["crop_margin"] < 0.6
    assert HeadPoseEstimator().margin == card["crop_margin"]


def test_bundled_model_on_held_out_biwi(held_out):
    from headpose.evaluate import evaluate

    card = json.loads((WEIGHTS / "headpose_ssrnet_mt.json").read_text())
    r = evaluate(DEFAULT_MODEL, [held_out], quiet=True)[str(held_out)]
    assert r["n"] > 250
    assert r["mean"] < 4.0, r
    # the slice agrees with the card's number on all 2,282 held-out crops
    assert abs(r["mean"] - card["validation"]["mae"]["mean"]) < 0.5, (r, card["validation"])


def test_bundled_exports_agree(held_out):
    """int8 and ONNX siblings against the float .tflite on real held-out crops: ONNX exact, int8 drift bounded."""
    from headpose.data.npz import load_npz
    from headpose.runtime import open_model

    x, _ = load_npz(held_out)
    ref = open_model(DEFAULT_MODEL)(x)
    onnx = pytest.importorskip("onnxruntime") and open_model(WEIGHTS / "headpose_ssrnet_mt.onnx")(x)
    assert np.abs(onnx - ref).max() < 0.01
    int8 = open_model(WEIGHTS / "headpose_ssrnet_mt_int8.tflite")(x)
    assert np.abs(int8 - ref).mean() < 0.5


def test_bundled_keras_matches_tflite(held_out):
    pytest.importorskip("keras")
    from headpose.data.npz import load_npz
    from headpose.runtime import open_model

    x, _ = load_npz(held_out)
    k = open_model(WEIGHTS / "headpose_ssrnet_mt.keras")(x[:64])
    t = open_model(DEFAULT_MODEL)(x[:64])
    assert np.abs(k - t).max() < 0.01


def test_bundled_model_on_detector_crops_of_full_frames():
    """End to end on full 640×480 BIWI frames: BlazeFace, the card's crop margin, the bundled model."""
    import cv2

    from headpose.data.labels import read_biwi_bin

    files = sorted((DATA / "biwi_frames" / "01").glob("*_rgb.png"))
    est = HeadPoseEstimator()
    pred = np.array([est.predict(cv2.imread(str(f)))[0].angles for f in files])
    labels = np.array([read_biwi_bin(str(f).replace("_rgb.png", "_pose.bin")) for f in files])
    assert len(files) == 10 and np.abs(pred - labels).mean() < 3.0
