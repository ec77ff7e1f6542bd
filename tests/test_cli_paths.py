"""Command-line paths not covered elsewhere: ``train --config`` / ``--resume``, ``export`` of a legacy ``.h5``,
``evaluate`` on several files, ``predict`` on a folder holding a video, and an interrupted ``predict``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import SEED_H5, SEED_TFLITE, biwi_frames, json_rows, write_video

from headpose.cli import main
from headpose.data.npz import load_npz, save_npz


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, biwi_npz):
    """64 training and 64 validation crops of the real BIWI slices (a training epoch in a few seconds)."""
    d = tmp_path_factory.mktemp("tiny")
    for name in ("train", "val"):
        img, pose = load_npz(biwi_npz[name], mmap=False)
        save_npz(d / f"{name}.npz", img[::len(img) // 64][:64], pose[::len(img) // 64][:64])
    return d


def _history(run) -> list[str]:
    return [r.split(",")[0] for r in (run / "history.csv").read_text().splitlines()[1:]]


def test_train_config_flags_win_and_resume(tiny, tmp_path, capsys):
    pytest.importorskip("keras")
    run = tmp_path / "run"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data = ["{tiny / "train.npz"}"]\nval = ["{tiny / "val.npz"}"]\nout = "{run}"\nepochs = 5\n'
                   "batch_size = 16\nseed = 7\naugment = false\nworkers = 1\nlr = 0.002\n")
    assert main(["train", "--config", str(cfg), "--epochs", "1"]) == 0  # the flag wins over the file's 5
    saved = json.loads((run / "config.json").read_text())
    assert (saved["epochs"], saved["batch_size"], saved["seed"], saved["augment"], saved["lr"]) == (1, 16, 7, False,
                                                                                                    0.002)
    assert _history(run) == ["1"]
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert _history(run) == ["1", "2"]  # continued, not started over
    assert json.loads((run / "state.json").read_text())["epoch"] == 2
    assert "resuming" in capsys.readouterr().out

    bad = tmp_path / "bad.toml"
    bad.write_text(f'data = ["{tiny / "train.npz"}"]\nout = "{tmp_path / "r2"}"\nepochz = 3\nbogus = 1\n')
    assert main(["train", "--config", str(bad)]) == 2
    assert "unknown setting(s) bogus, epochz" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a training run" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()

    # A run is resumed where it is named, not where it was first written; a new run never lands on an old one.
    copy = tmp_path / "copied"
    import shutil

    shutil.copytree(run, copy)
    before = (run / "last.keras").read_bytes()
    assert main(["train", "--resume", str(copy), "--epochs", "3"]) == 0
    assert _history(copy) == ["1", "2", "3"] and _history(run) == ["1", "2"]
    assert (run / "last.keras").read_bytes() == before
    assert main(["train", "--config", str(cfg), "--epochs", "1"]) == 2
    assert f"{run}: already holds a training run" in capsys.readouterr().err and _history(run) == ["1", "2"]

    # The validation flag wins over the file's sets; a value of the wrong type is one line naming the file.
    split = tmp_path / "split"
    assert main(["train", "--config", str(cfg), "--out", str(split), "--epochs", "1", "--val-split", "0.25"]) == 0
    saved = json.loads((split / "config.json").read_text())
    assert saved["val"] is None and saved["val_split"] == 0.25
    for line, words in [('epochs = "2"', 'epochs = \'2\' is not a whole number'),
                        ("lr_decay_epochs = [1.5]", "lr_decay_epochs = [1.5] is not a list of whole numbers"),
                        ("augment = 1", "augment = 1 is not true or false")]:
        typed = tmp_path / "typed.toml"
        typed.write_text(f'data = ["{tiny / "train.npz"}"]\nout = "{tmp_path / "r3"}"\n{line}\n')
        assert main(["train", "--config", str(typed)]) == 2
        assert f"{typed}: {words}" in capsys.readouterr().err
    assert not (tmp_path / "r3").exists()


def test_export_from_legacy_h5(tmp_path, biwi_npz, capsys):
    """The original project's .h5 weights exported to TFLite give the seed's own .tflite's angles."""
    pytest.importorskip("keras")
    from headpose.runtime import open_model

    out = tmp_path / "seed.tflite"
    assert main(["export", "--model", str(SEED_H5), "--format", "tflite", "--out", str(out),
                 "--calib", str(biwi_npz["val"])]) == 0
    assert "max |Δ|" in capsys.readouterr().out
    x, _ = load_npz(biwi_npz["val"])
    ref = open_model(SEED_TFLITE)(x)
    assert np.abs(open_model(out)(x) - ref).max() < 0.01 and np.abs(ref).max() > 30


def test_evaluate_several_files(tmp_path, biwi_npz, capsys):
    """One call, two test sets: each scored on its own, as two separate calls score them."""
    from headpose.evaluate import evaluate

    files = [biwi_npz["train"], biwi_npz["val"]]
    report = tmp_path / "e.json"
    assert main(["evaluate", "--model", "lite", "--data", *map(str, files), "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    got = json.loads(report.read_text())
    assert list(got) == [str(f) for f in files]
    for f in files:
        alone = evaluate("lite", [f], quiet=True)[str(f)]
        assert got[str(f)] == pytest.approx(alone, abs=1e-6)
        assert got[str(f)]["n"] == len(load_npz(f)[1]) and f.name in printed
    assert got[str(files[0])]["mean"] != got[str(files[1])]["mean"]


@pytest.fixture()
def media_folder(tmp_path):
    """Two BIWI frames and a 6-frame video of the others in a subfolder."""
    files, images, _ = biwi_frames()
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for f in files[:2]:
        (src / f.name).symlink_to(f)
    write_video(src / "sub" / "clip.mp4", images[2:8])
    return src, [f.name for f in files[:2]]


def test_predict_folder_with_video(pose_model, media_folder, tmp_path):
    src, names = media_folder
    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    assert main(["predict", str(src), "--model", str(pose_model), "--out", str(out), "--json", str(report)]) == 0
    rows = json_rows(report)
    clip = str(src / "sub" / "clip.mp4")
    assert sorted(r["source"] for r in rows if r["source"] != clip) == [str(src / n) for n in names]
    assert [r["frame"] for r in rows if r["source"] == clip] == list(range(6))
    assert all(r["yaw"] is not None for r in rows)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted([*names, "sub/clip.mp4"])
    cap = cv2.VideoCapture(str(out / "sub" / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    cap.release()


def test_interrupted_predict_leaves_no_temp_files(pose_model, media_folder, tmp_path, monkeypatch, capsys):
    """Ctrl-C in the middle of the video (after the images): exit 130, no report, no half-written video, no
    temp file anywhere."""
    from headpose import outputs

    calls = []
    annotate = outputs.annotate

    def interrupt_at_the_fourth_picture(image, poses, style="axis"):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return annotate(image, poses, style)

    monkeypatch.setattr(outputs, "annotate", interrupt_at_the_fourth_picture)
    src, names = media_folder
    out, report = tmp_path / "out", tmp_path / "reports" / "r.jsonl"
    assert main(["predict", str(src), "--model", str(pose_model), "--out", str(out), "--json", str(report)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert len(calls) == 4
    assert not report.exists() and not (out / "sub" / "clip.mp4").exists()
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(names)  # the finished images stay


def test_export_by_bundled_name_with_unlabelled_calibration_and_bad_outputs(tiny, tmp_path, capsys):
    """``export --model lite`` exports the package's own lite weights (the same angles as its bundled .tflite),
    calibrating/checking on crops without labels; wrong file names and folders fail before any work."""
    pytest.importorskip("keras")
    from headpose.runtime import open_model

    img, _ = load_npz(tiny / "val.npz", mmap=False)
    save_npz(tmp_path / "faces.npz", img, np.full((len(img), 3), np.nan, np.float32))  # as `prepare faces` leaves it
    out = tmp_path / "lite.tflite"
    for argv, words in [(["--format", "onnx", "--out", str(tmp_path / "x.tflite")],
                         "--format onnx writes a .onnx file"),
                        (["--format", "tflite", "--out", str(tmp_path)], "--format tflite writes a .tflite file"),
                        (["--format", "tflite-int8", "--out", str(out)], "int8 export needs representative crops")]:
        assert main(["export", "--model", "lite", *argv]) == 2
        assert words in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tflite")) and not list(tmp_path.glob("*.onnx"))
    assert main(["export", "--model", "lite", "--format", "tflite", "--out", str(out),
                 "--calib", str(tmp_path / "faces.npz")]) == 0
    x = img[:32].astype(np.float32)
    np.testing.assert_allclose(open_model(out, flip=False)(x), open_model("lite", flip=False)(x), atol=0.01)

    # data verbs read the unlabelled set; evaluate refuses it, an empty set, and a folder as --json.
    assert main(["data", "subset", str(tmp_path / "faces.npz"), "--n", "8", "--out", str(tmp_path / "s.npz")]) == 0
    assert len(load_npz(tmp_path / "s.npz", unlabelled=True)[0]) == 8
    save_npz(tmp_path / "empty.npz", img[:0], np.zeros((0, 3), np.float32))
    assert main(["evaluate", "--model", "lite", "--data", str(tmp_path / "empty.npz")]) == 2
    assert "nothing to score (an empty set)" in capsys.readouterr().err
    assert main(["evaluate", "--model", "lite", "--data", str(tiny / "val.npz"), "--json", str(tmp_path)]) == 2
    assert f"--json {tmp_path}: a folder" in capsys.readouterr().err
    for yaw in ("20", "99,20"):
        with pytest.raises(SystemExit):
            main(["data", "subset", str(tiny / "val.npz"), "--yaw", yaw, "--out", str(tmp_path / "y.npz")])
        assert "--yaw: expected" in capsys.readouterr().err


def test_a_damaged_set_is_refused_not_read(tiny, tmp_path):
    """A few bytes changed inside the images of an uncompressed .npz: the memory-mapped read checks the CRC."""
    from headpose.errors import HeadposeError

    raw = bytearray((tiny / "val.npz").read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 100] = bytes(255 - b for b in raw[middle : middle + 100])
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(HeadposeError, match="bad.npz: cannot read .*CRC"):
        load_npz(bad)
    assert len(load_npz(tiny / "val.npz")[0]) == 64
