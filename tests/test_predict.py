"""Prediction on real frames, folders, videos; the JSON Lines report; the demo. No timing assertions.

The pose model is the bundled one when the package has it; otherwise a freshly initialised SSR-Net-MT made under
the session's tmp path (conftest ``pose_model``). Tests about the JSON schema, skipping and outputs do not depend
on how good the model is; the accuracy test runs only with the bundled model. The seed's files in ../shared/peers
are never used as our model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROW_KEYS as KEYS
from conftest import biwi_frames, json_rows, write_video

from headpose.demo import demo
from headpose.errors import HeadposeError
from headpose.estimator import DEFAULT_MODEL, FacePose, HeadPoseEstimator
from headpose.predict import predict_source


def test_one_face_per_biwi_frame(est, frames):
    _, images = frames
    for im in images:
        faces = est.predict(im)
        assert len(faces) == 1
        f = faces[0]
        assert isinstance(f, FacePose) and f.score > 0.8
        x0, y0, x1, y1 = f.box
        assert 250 < (x0 + x1) / 2 < 450 and 180 < (y0 + y1) / 2 < 360 and 60 < x1 - x0 < 140
        assert all(np.isfinite(a) and abs(a) <= 99 for a in f.angles)
        d = f.to_dict()
        assert set(d) == {"track", "box", "score", "yaw", "pitch", "roll"} and len(d["box"]) == 4
        json.dumps(d)
    # The batched paths give the same answer as one image at a time.
    single = np.array([est.predict(im)[0].angles for im in images])
    batched = np.array([p[0].angles for p in est.predict_batch(images)])
    streamed = np.array([p[0].angles for p in est.predict_many(iter(images), batch=4, workers=2)])
    np.testing.assert_allclose(batched, single, atol=1e-3)
    np.testing.assert_allclose(streamed, single, atol=1e-3)


def test_predict_crops_shapes(est, frames):
    from headpose.detect import crop_face

    _, images = frames
    crops = np.stack([crop_face(im, est.predict(im)[0].box) for im in images[:3]])
    out = est.predict_crops(crops)
    assert out.shape == (3, 3) and out.dtype == np.float32
    np.testing.assert_allclose(est.predict_crops(crops[0]), out[:1], atol=1e-4)
    big = np.stack([cv2.resize(c, (128, 128)) for c in crops])  # other sizes are resized to the model's
    assert est.predict_crops(big).shape == (3, 3)
    assert est.predict_crops(np.zeros((0, 64, 64, 3), np.uint8)).shape == (0, 3)
    with pytest.raises(HeadposeError):
        est.predict_crops(np.zeros((2, 64, 32, 3), np.uint8))
    assert est.predict(np.full((240, 320, 3), 127, np.uint8)) == []


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="accuracy is checked on the bundled model only")
def test_bundled_model_is_accurate_on_biwi_frames():
    _, images, labels = biwi_frames()
    est = HeadPoseEstimator()
    pred = np.array([est.predict(im)[0].angles for im in images])
    assert np.abs(pred - labels).mean() < 6.0


def test_folder_json_and_skips(est, frames, tmp_path, capsys):
    files, _ = frames
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for f in files[:3]:
        (src / f.name).write_bytes(f.read_bytes())
    (src / "sub" / files[3].name).write_bytes(files[3].read_bytes())
    (src / "sub" / "broken.png").write_bytes(files[4].read_bytes()[:2000])  # truncated PNG: unreadable
    (src / "notes.txt").write_text("not an image")
    (src / "bad.mp4").write_bytes(b"not a video")
    cv2.imwrite(str(src / "empty_wall.jpg"), np.full((240, 320, 3), 128, np.uint8))  # no face
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    s = predict_source(src, estimator=est, out=out, json_out=report)
    assert (s["images"], s["faces"], s["no_face"], s["videos"]) == (5, 4, 1, 0)
    reasons = {Path(name).name: why for name, why in s["skipped"]}
    assert reasons == {"broken.png": "unreadable image", "notes.txt": "not an image or video",
                       "bad.mp4": "broken video"}
    printed = capsys.readouterr()
    assert "skipped 3" in printed.out and "broken.png" in printed.out and "bad.mp4" in printed.out
    assert "broken.png" in printed.err  # named as it happens
    rows = json_rows(report)
    assert len(rows) == 5 and all(set(r) == KEYS for r in rows)
    for r in rows:
        assert r["frame"] == 0 and Path(r["source"]).parent in (src, src / "sub")
        if Path(r["source"]).name == "empty_wall.jpg":
            assert r["box"] is r["score"] is r["yaw"] is r["pitch"] is r["roll"] is None
        else:
            assert len(r["box"]) == 4 and r["box"][0] < r["box"][2] and r["box"][1] < r["box"][3]
            assert all(isinstance(r[k], float) for k in ("score", "yaw", "pitch", "roll"))
    # Annotated copies under the same relative paths; no temp files left behind.
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted([f.name for f in files[:3]] + [f"sub/{files[3].name}", "empty_wall.jpg"])
    assert not [p for p in tmp_path.rglob(".tmp-*")]
    assert cv2.imread(str(out / files[0].name)).shape == (480, 640, 3)


def test_single_image_prints_and_errors(est, frames, tmp_path, capsys):
    files, _ = frames
    s = predict_source(files[0], estimator=est)
    assert s["faces"] == 1 and s["written"] == []
    assert "face 1 box" in capsys.readouterr().out
    with pytest.raises(HeadposeError, match="no such file"):
        predict_source(tmp_path / "missing.jpg", estimator=est)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 nope")
    with pytest.raises(HeadposeError, match="unreadable image"):
        predict_source(bad, estimator=est)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HeadposeError, match="no images or videos"):
        predict_source(empty, estimator=est)


def test_video_frame_by_frame(est, frames, tmp_path):
    _, images = frames
    video = write_video(tmp_path / "clip.mp4", images)
    out, report = tmp_path / "out", tmp_path / "clip.jsonl"
    s = predict_source(video, estimator=est, out=out, json_out=report, quiet=True)
    assert (s["videos"], s["frames"], s["faces"]) == (1, 10, 10)
    rows = json_rows(report)
    assert [r["frame"] for r in rows] == list(range(10))
    assert all(r["source"] == str(video) and set(r) == KEYS and r["yaw"] is not None for r in rows)
    cap = cv2.VideoCapture(str(out / "clip.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    ok, first = cap.read()
    assert ok and first.shape == (480, 640, 3)
    cap.release()


def test_a_single_video_that_ends_early_is_reported(est, frames, tmp_path, capsys):
    """An AVI cut in half still states 20 frames: the frames it has are read, and the run names it as ended
    early, alone as inside a folder."""
    _, images = frames
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for im in images * 2:
        writer.write(im)
    writer.release()
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    s = predict_source(cut, estimator=est, quiet=True)
    assert 0 < s["frames"] < 20 and s["faces"] == s["frames"]
    assert s["skipped"] == [(str(cut), f"video ended early (frame {s['frames']} of 20)")]
    assert f"skipped {cut}: video ended early" in capsys.readouterr().err


def test_show_without_gui_is_a_clear_error(est, frames):
    from headpose import predict

    if predict._has_gui():
        pytest.skip("this OpenCV has a GUI")
    with pytest.raises(HeadposeError, match="pip install opencv-python"):
        predict_source(frames[0][0], estimator=est, show=True)


def test_default_model_missing_is_a_clear_error(monkeypatch, tmp_path):
    from headpose import runtime

    monkeypatch.setattr(runtime, "WEIGHTS", tmp_path / "weights")  # an installation without the bundled models
    with pytest.raises(HeadposeError, match="headpose_ssrnet_mt.tflite is missing"):
        HeadPoseEstimator()


def test_demo_writes_its_files(pose_model, tmp_path, capsys):
    rows = demo(tmp_path / "demo", model=pose_model)
    assert len(rows) == 3 and all(set(r) == KEYS and r["yaw"] is not None for r in rows)
    assert [int((r["box"][0] + r["box"][2]) / 2 // 256) for r in rows] == [0, 1, 2]  # one face per panel
    for name in ("demo.jpg", "demo-input.jpg", "demo.jsonl"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    assert json_rows(tmp_path / "demo" / "demo.jsonl") == rows
    assert "yaw" in capsys.readouterr().out


def test_cli_predict_and_demo_without_tensorflow(pose_model, frames, tmp_path):
    """The CLI end to end in a fresh interpreter, which must never import TensorFlow or Keras."""
    files, _ = frames
    code = (
        "import sys; from headpose.cli import main\n"
        f"rc = main(['predict', {str(files[0])!r}, '--model', {str(pose_model)!r}, '--json', "
        f"{str(tmp_path / 'r.jsonl')!r}, '--out', {str(tmp_path / 'o')!r}])\n"
        f"rc += main(['demo', '--out', {str(tmp_path / 'd')!r}, '--model', {str(pose_model)!r}])\n"
        "bad = [m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "sys.exit(rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(json_rows(tmp_path / "r.jsonl")) == 1
    assert (tmp_path / "o" / files[0].name).exists() and (tmp_path / "d" / "demo.jpg").exists()
    r = subprocess.run([sys.executable, "-m", "headpose", "predict", str(tmp_path / "nope.png"), "--model",
                        str(pose_model)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_outputs_never_replace_an_input_and_bad_output_paths_fail_first(est, frames, tmp_path, monkeypatch):
    files, _ = frames
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in"
    src.mkdir()
    image = src / "f.png"
    image.write_bytes(files[0].read_bytes())
    write_video(src / "clip.mp4", [cv2.imread(str(files[0]))] * 3)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    for source, out, words in [(image, src, "would overwrite the input"),
                               (src / "clip.mp4", src, "would overwrite the input"),
                               (src, src, "the source folder itself"),
                               (image, tmp_path / "annotated.jpg", "not a file name"),
                               (image, image, "exists and is not a folder")]:
        with pytest.raises(HeadposeError, match=words):
            predict_source(source, estimator=est, out=out)
    with pytest.raises(HeadposeError, match="a folder; give a file name"):
        predict_source(image, estimator=est, json_out=src)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # nothing replaced, nothing added
    assert not list(tmp_path.glob(".tmp-*"))
    s = predict_source(image, estimator=est, out=tmp_path / "ann", quiet=True)
    assert s["images"] == 1 and (tmp_path / "ann" / "f.png").read_bytes() != image.read_bytes()


def test_api_names_what_is_wrong_with_a_path_or_array(est, frames, tmp_path):
    files, images = frames
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    for path, words in [(tmp_path / "missing.jpg", "no such file"), (tmp_path, "a folder, not an image"),
                        (tmp_path / "notes.txt", "not an image or video"), (tmp_path / "cut.jpg", "unreadable image")]:
        with pytest.raises(HeadposeError, match=words):
            est(path)
        with pytest.raises(HeadposeError, match=words):
            est(str(path))
    reference = est(images[0]).angles
    np.testing.assert_allclose(est((images[0].astype(np.uint16) << 8) | 0x80).angles, reference, atol=1e-4)
    with pytest.raises(HeadposeError, match="uint8"):
        est(images[0].astype(np.float32))
    with pytest.raises(HeadposeError, match="frame 1 of the frames given"):
        list(est.stream([images[0], None]))


@pytest.mark.parametrize("args, words", [(["--threads", "0"], "--threads: expected 1 or more"),
                                         (["--min-score", "-1"], "--min-score: expected a number between 0 and 1"),
                                         (["--min-score", "1.5"], "--min-score: expected a number between 0 and 1")])
def test_cli_rejects_out_of_range_numbers(frames, args, words, capsys):
    from headpose.cli import main

    with pytest.raises(SystemExit) as e:
        main(["predict", str(frames[0][0]), *args])
    assert e.value.code == 2 and words in capsys.readouterr().err


def test_core_install_names_the_extra_for_keras_models_and_training(frames, tmp_path):
    """Without Keras (the core install), a .keras model and the training verbs say which extra to install."""
    keras_model = DEFAULT_MODEL.with_suffix(".keras")
    if not keras_model.exists():
        pytest.skip("no bundled .keras model in this build")
    block = "import sys; sys.modules.update(keras=None, tensorflow=None); from headpose.cli import main; "
    for argv in (["predict", str(frames[0][0]), "--model", str(keras_model)],
                 ["train", "--data", str(tmp_path / "x.npz"), "--out", str(tmp_path / "run")]):
        r = subprocess.run([sys.executable, "-c", block + f"sys.exit(main({argv!r}))"], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and "pip install 'headpose-ssr[train]'" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
