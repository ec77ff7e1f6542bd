"""Dataset readers and packing (``headpose prepare``) and ``headpose data show``, on the real shared data.

Shared files are read in place; where a test needs its own layout (a slice of BIWI, the original ``hpdb``
layout, broken files) it builds it in ``tmp_path`` from symlinks and freshly written files.
"""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import scipy.io
from conftest import DATA, SEED_TFLITE, link_aflw

from headpose.cli import main
from headpose.data.npz import angle_filter, load_npz
from headpose.data.prepare import prepare, report_path, split_groups
from headpose.data.show import TILE, sheet_shape
from headpose.geometry import biwi_euler_to_matrix

BIWI_SLICE = ("01", "02", "13", "17", "22")  # 5 of the 16 sequences ...
BIWI_EVERY = 12  # ... every 12th frame: ~200 crops


@pytest.fixture(scope="module")
def seed_model():
    from headpose.runtime import open_model

    return open_model(SEED_TFLITE)


def _mae(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).mean())


def _link(src, dst_dir):
    dst_dir.mkdir(parents=True, exist_ok=True)
    (dst_dir / src.name).symlink_to(src)


@pytest.fixture(scope="module")
def biwi_slice(tmp_path_factory):
    root = tmp_path_factory.mktemp("biwi_slice")
    for seq in BIWI_SLICE:
        for img in sorted((DATA / "biwi_crops" / seq).glob("*_rgb.jpg"))[::BIWI_EVERY]:
            _link(img, root / seq)
            _link(img.with_name(img.name.replace("_rgb.jpg", "_pose.bin")), root / seq)
    return root


def _raw_bin_angles(src):
    """The three .bin Euler angles reordered to [yaw, pitch, roll] WITHOUT the conversion (the wrong way)."""
    files = sorted(src.glob("*/*_pose.bin"))
    return np.array([np.fromfile(f, "<f4")[[4, 3, 5]] for f in files])


# --- 300W-LP / AFLW2000 ------------------------------------------------------------------------------------

#: a slice of AFLW2000: frontal to 67° of yaw either way, and two beyond the ±99° filter (roll 99.5 and −100.9)
AFLW_SLICE = ("image00002", "image00006", "image00050", "image00112", "image00211", "image00617", "image01486",
              "image01642")


@pytest.mark.parametrize("fmt", ["aflw2000", "300wlp"])
def test_mat_labels_equal_pose_para(tmp_path, fmt, seed_model):
    src = link_aflw(tmp_path / "src", AFLW_SLICE) if fmt == "aflw2000" else DATA / "300w_lp"
    out = tmp_path / f"{fmt}.npz"
    assert prepare(fmt, src, out, workers=1)
    images, pose = load_npz(out)
    mats = sorted(src.rglob("*.mat"))
    assert len(images) == len(mats) and images.shape[1:] == (64, 64, 3)
    expected = np.array([np.degrees(scipy.io.loadmat(m)["Pose_Para"][0, [1, 0, 2]]) for m in mats])
    np.testing.assert_allclose(pose, expected, atol=1e-4)
    if fmt == "aflw2000":
        keep = angle_filter(pose)
        assert keep.sum() == len(AFLW_SLICE) - 2  # packed as labelled; the filter is for training and scoring
        err = np.abs(seed_model(images[keep]) - pose[keep]).mean(axis=0)
        assert (err < 12).all(), err


def test_landmark_crop_rule(tmp_path):
    """Crop = valid-pt2d box (coordinates ≤ 0 dropped) widened by the margin, clipped: check on one image."""
    src = link_aflw(tmp_path / "src", ("image00050", "image00112"))
    out = tmp_path / "a.npz"
    assert prepare("aflw2000", src, out, size=64, margin=0.6, workers=1)
    img = cv2.imread(str(src / "image00050.jpg"))
    pt = scipy.io.loadmat(src / "image00050.mat")["pt2d"]
    ok = (pt[0] > 0) & (pt[1] > 0)
    x0, x1, y0, y1 = pt[0][ok].min(), pt[0][ok].max(), pt[1][ok].min(), pt[1][ok].max()
    w, h = x1 - x0, y1 - y0
    box = [max(round(x0 - 0.6 * w), 0), max(round(y0 - 0.6 * h), 0),
           min(round(x1 + 0.6 * w), img.shape[1]), min(round(y1 + 0.6 * h), img.shape[0])]
    ref = cv2.resize(img[box[1] : box[3], box[0] : box[2]], (64, 64), interpolation=cv2.INTER_AREA)
    images = load_npz(out)[0]
    assert len(images) == 2  # packed in name order: image00050 first
    assert np.abs(images[0].astype(int) - ref).max() <= 1
    assert np.abs(images[1].astype(int) - ref).max() > 50


# --- BIWI ---------------------------------------------------------------------------------------------------

def test_biwi_crops_labels_are_converted(tmp_path, biwi_slice, seed_model):
    """Fails if the three .bin angles were used directly, or composed in another order, or one sign is wrong: the
    seed agrees with the converted labels only, angle by angle (correct: about 2.5° each; roll's sign flipped:
    18° of roll; Rx·Ry·Rz: 9° of roll)."""
    out = tmp_path / "biwi.npz"
    assert prepare("biwi", biwi_slice, out, workers=1)
    images, pose = load_npz(out)
    assert len(images) == len(list(biwi_slice.glob("*/*_rgb.jpg")))
    pred = seed_model(images)
    raw = _raw_bin_angles(biwi_slice)
    err = np.abs(pred - pose).mean(axis=0)
    assert (err < 5.0).all(), err
    assert np.abs(pose).max(axis=0).min() > 40  # real, varied poses on every axis
    assert _mae(pred, raw) > 10.0
    assert _mae(pose, raw) > 5.0


def _write_txt_pose(bin_path, txt_path):
    """A BIWI original-layout frame_*_pose.txt (3×3 rotation + head centre) from a .bin."""
    v = np.fromfile(bin_path, "<f4").astype(np.float64)
    m = biwi_euler_to_matrix(*v[3:6])
    txt_path.write_text("".join(" ".join(f"{a:.8f}" for a in row) + " \n" for row in m) + "\n"
                        + " ".join(f"{a:.3f}" for a in v[:3]) + " \n")


def test_biwi_original_layout_detector_crops(tmp_path, seed_model):
    """hpdb/NN/frame_NNNNN_rgb.png + _pose.txt: BlazeFace finds every face and the seed agrees (< 6°)."""
    seq = tmp_path / "hpdb" / "01"
    frames = sorted((DATA / "biwi_frames" / "01").glob("*_rgb.png"))
    for img in frames:
        _link(img, seq)
        _write_txt_pose(img.with_name(img.name.replace("_rgb.png", "_pose.bin")),
                        seq / img.name.replace("_rgb.png", "_pose.txt"))
    out = tmp_path / "hpdb.npz"
    assert prepare("biwi", tmp_path / "hpdb", out, workers=1)
    images, pose = load_npz(out)
    assert len(images) == 10  # the face found in every frame
    assert _mae(seed_model(images), pose) < 6.0
    # The same frames with their .bin labels (full 640×480 frames are detected too) give the same pack.
    out2 = tmp_path / "frames.npz"
    assert prepare("biwi", DATA / "biwi_frames", out2, workers=1)
    images2, pose2 = load_npz(out2)
    np.testing.assert_array_equal(images2, images)
    np.testing.assert_allclose(pose2, pose, atol=1e-3)


def test_split_by_sequence(tmp_path, biwi_slice, capsys):
    a, b = tmp_path / "a" / "biwi.npz", tmp_path / "b" / "biwi.npz"
    assert prepare("biwi", biwi_slice, a, workers=2, split=0.6, seed=3)
    printed = capsys.readouterr().out
    assert prepare("biwi", biwi_slice, b, workers=2, split=0.6, seed=3)
    train_groups, test_groups = split_groups(list(BIWI_SLICE), 0.6, 3)
    assert len(train_groups) == 3 and len(test_groups) == 2
    assert f"[{' '.join(train_groups)}]" in printed and f"[{' '.join(test_groups)}]" in printed
    total = 0
    for part, groups in (("train", train_groups), ("test", test_groups)):
        za, zb = np.load(a.with_name(f"biwi_{part}.npz")), np.load(b.with_name(f"biwi_{part}.npz"))
        assert set(za["group"]) == set(groups)  # every crop of a sequence on one side only
        np.testing.assert_array_equal(za["image"], zb["image"])  # reproducible with the seed
        np.testing.assert_array_equal(za["pose"], zb["pose"])
        expected = sum(len(list((biwi_slice / g).glob("*_rgb.jpg"))) for g in groups)
        assert len(za["pose"]) == expected
        total += expected
    assert total == len(list(biwi_slice.glob("*/*_rgb.jpg")))
    assert not a.exists()  # with --split only OUT_train / OUT_test
    # Another seed draws other sequences; a given list of held-out sequences is honoured.
    assert {tuple(split_groups(list(BIWI_SLICE), 0.6, s)[1]) for s in range(10)} != {tuple(test_groups)}
    c = tmp_path / "c" / "biwi.npz"
    assert prepare("biwi", biwi_slice, c, workers=1, test_groups=["02", "17"])
    assert set(np.load(c.with_name("biwi_test.npz"))["group"]) == {"02", "17"}


# --- bad input ----------------------------------------------------------------------------------------------

def _report_counts(path):
    text = path.read_text()
    counts = dict(re.findall(r"^  (.+): (\d+)$", text, re.MULTILINE))
    return {k: int(v) for k, v in counts.items()}, text


def test_bad_inputs_mat(tmp_path):
    src = tmp_path / "aflw"
    good = DATA / "aflw2000" / "image00050"
    _link(good.with_suffix(".jpg"), src)
    _link(good.with_suffix(".mat"), src)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")  # unreadable image
    (src / "broken.mat").symlink_to(good.with_suffix(".mat"))
    (src / "nopose.jpg").symlink_to(good.with_suffix(".jpg"))  # .mat without Pose_Para
    scipy.io.savemat(src / "nopose.mat", {"pt2d": scipy.io.loadmat(good.with_suffix(".mat"))["pt2d"]})
    (src / "nolabel.jpg").symlink_to(good.with_suffix(".jpg"))  # image without .mat
    (src / "badmat.jpg").symlink_to(good.with_suffix(".jpg"))  # label file that is not a .mat
    (src / "badmat.mat").write_text("garbage")
    out = tmp_path / "out.npz"
    assert main(["prepare", "aflw2000", "--src", str(src), "--out", str(out), "--workers", "1"]) == 0
    assert len(load_npz(out)[0]) == 1
    counts, text = _report_counts(report_path(out))
    assert counts == {"unreadable image": 1, "no Pose_Para in .mat": 1, "image without label": 1,
                      "bad label file": 1}
    for name in ("broken.jpg", "nopose.jpg", "nolabel.jpg", "badmat.jpg"):
        assert str(src / name) in text


def test_bad_inputs_folder_and_biwi(tmp_path):
    frame = DATA / "biwi_frames" / "01" / "frame_00166_rgb.png"
    src = tmp_path / "renders"
    _link(frame, src / "alice")
    (src / "alice" / "frame_00166_rgb.txt").write_text("10.5 -3 2\n")
    (src / "alice" / "two.png").symlink_to(frame)
    (src / "alice" / "two.txt").write_text("10 20\n")  # wrong number of values
    (src / "alice" / "words.png").symlink_to(frame)
    (src / "alice" / "words.txt").write_text("yaw pitch roll\n")  # not numbers
    (src / "bob").mkdir()
    cv2.imwrite(str(src / "bob" / "blank.png"), np.full((480, 640, 3), 127, np.uint8))  # no face
    (src / "bob" / "blank.txt").write_text("0 0 0\n")
    (src / "bob" / "lonely.png").symlink_to(frame)  # no .txt
    out = tmp_path / "renders.npz"
    assert main(["prepare", "folder", "--src", str(src), "--out", str(out), "--workers", "1"]) == 0
    _, pose = load_npz(out)
    np.testing.assert_allclose(pose, [[10.5, -3, 2]])
    counts, _ = _report_counts(report_path(out))
    assert counts == {"bad label file": 2, "no face found": 1, "image without label": 1}

    biwi = tmp_path / "biwi" / "03"
    crop = DATA / "biwi_crops" / "01" / "frame_00004_rgb.jpg"
    _link(crop, biwi)
    _link(crop.with_name("frame_00004_pose.bin"), biwi)
    (biwi / "frame_00005_rgb.jpg").symlink_to(crop)
    (biwi / "frame_00005_pose.bin").write_bytes(np.zeros(5, "<f4").tobytes())  # 5 values, not 6
    (biwi / "frame_00006_rgb.jpg").symlink_to(crop)
    (biwi / "frame_00006_pose.txt").write_text("1 0 0\n0 1\n")  # not a 3×3 matrix
    out = tmp_path / "biwi.npz"
    assert main(["prepare", "biwi", "--src", str(tmp_path / "biwi"), "--out", str(out)]) == 0
    assert len(load_npz(out)[0]) == 1
    assert _report_counts(report_path(out))[0] == {"bad label file": 2}


def test_nothing_packed_exits_nonzero(tmp_path):
    src = tmp_path / "empty_faces"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((200, 200, 3), np.uint8))
    (src / "a.txt").write_text("1 2 3\n")
    (src / "b.jpg").write_bytes(b"nope")
    (src / "b.txt").write_text("1 2 3\n")
    out = tmp_path / "none.npz"
    assert main(["prepare", "folder", "--src", str(src), "--out", str(out)]) == 1
    assert not out.exists()
    assert _report_counts(report_path(out))[0] == {"no face found": 1, "unreadable image": 1}
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # no temp file left behind
    assert main(["prepare", "folder", "--src", str(tmp_path / "missing"), "--out", str(out)]) == 2


# --- data show ----------------------------------------------------------------------------------------------

def test_data_show_writes_png(tmp_path, biwi_slice):
    out = tmp_path / "biwi.npz"
    assert prepare("biwi", biwi_slice, out, workers=1)
    png = tmp_path / "sheet.png"
    assert main(["data", "show", str(out), "--out", str(png), "--n", "10"]) == 0
    sheet = cv2.imread(str(png))
    rows, cols = sheet_shape(10)
    assert (rows, cols) == (3, 4)
    assert sheet.shape == (rows * TILE, cols * TILE, 3)
    assert main(["data", "show", str(tmp_path / "nope.npz"), "--out", str(png)]) == 2


def test_data_show_unknown_angles(tmp_path, biwi_npz):
    """A pack with unknown angles (NaN: aflw_wild beyond ±70° of yaw) is shown, "?" and no axes on those crops."""
    from headpose.data.npz import save_npz

    x, y = load_npz(biwi_npz["val"])
    x, y = np.asarray(x[:4]), y[:4].copy()
    y[1:3, 1:] = np.nan
    pack = tmp_path / "partial.npz"
    save_npz(pack, x, y)
    png = tmp_path / "sheet.png"
    assert main(["data", "show", str(pack), "--out", str(png), "--n", "4"]) == 0
    sheet = cv2.imread(str(png)).astype(int)
    tiles = [sheet[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] for r in range(2) for c in range(2)]
    # axes drawn in colour on the crops with all three angles, none on the two with unknown ones
    coloured = [int((np.abs(t[..., 2] - t[..., 1]) > 120).sum()) for t in tiles]
    assert coloured[0] > 50 and coloured[3] > 50 and max(coloured[1:3]) < 5, coloured


# --- unlabelled faces, pseudo-labels, subsets -----------------------------------------------------------------

def test_prepare_faces_then_label(tmp_path):
    """`prepare faces` packs unlabelled photos (pose NaN, refused by training until labelled); `data label`
    writes our model's flip-averaged answers, the same numbers the runtime gives on those crops."""
    from headpose.errors import HeadposeError
    from headpose.runtime import open_model, prepare_input

    src = tmp_path / "faces"
    src.mkdir()
    for f in sorted((DATA / "faces").glob("*.jpg"))[:6]:
        (src / f.name).symlink_to(f)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "faces.npz"
    assert main(["prepare", "faces", "--src", str(src), "--out", str(out), "--margin", "0.3", "--workers", "1"]) == 0
    x, y = load_npz(out, unlabelled=True)
    assert len(x) == 6 and np.isnan(y).all()
    assert _report_counts(report_path(out))[0] == {"unreadable image": 1}
    with pytest.raises(HeadposeError, match="data label"):
        load_npz(out)  # training and evaluation refuse unlabelled rows
    lab = tmp_path / "faces_t.npz"
    assert main(["data", "label", str(out), "--model", "full", "--out", str(lab)]) == 0
    xl, yl = load_npz(lab)
    assert np.array_equal(xl, x)
    want = open_model("full", flip=True)(prepare_input(np.asarray(x), 3, 64))
    np.testing.assert_allclose(yl, want, atol=1e-3)


def test_label_reads_real_poses_and_fills_only_unknown(tmp_path, biwi_npz):
    """On real BIWI crops the model's labels follow the truth (a constant or sign-flipped answer fails), and
    `--missing` keeps every known angle while filling the unknown ones with the model's."""
    from headpose.data.npz import nan_mae, save_npz

    x, y = load_npz(biwi_npz["val"], mmap=False)
    lab = tmp_path / "lab.npz"
    assert main(["data", "label", str(biwi_npz["val"]), "--model", "full", "--no-flip", "--out", str(lab)]) == 0
    _, t = load_npz(lab)
    assert nan_mae(t, y).mean() < 6.0
    for k in range(3):  # each angle moves with the truth
        assert np.corrcoef(t[:, k], y[:, k])[0, 1] > 0.6
    holed = y.copy()
    holed[::2, 1:] = np.nan  # pitch and roll unknown on every other row
    src = save_npz(tmp_path / "holed.npz", x, holed)
    fill = tmp_path / "fill.npz"
    assert main(["data", "label", str(src), "--model", "full", "--no-flip", "--missing", "--out", str(fill)]) == 0
    _, f = load_npz(fill)
    known = ~np.isnan(holed)
    assert np.array_equal(f[known], y[known])
    np.testing.assert_allclose(f[~known], t[~known], atol=1e-3)


def test_data_subset_and_join(tmp_path, biwi_npz):
    x, y = load_npz(biwi_npz["val"], mmap=False)
    side = tmp_path / "side.npz"
    assert main(["data", "subset", str(biwi_npz["val"]), "--yaw", "20,99", "--out", str(side)]) == 0
    xs, ys = load_npz(side)
    keep = (np.abs(y[:, 0]) >= 20) & (np.abs(y[:, 0]) <= 99)
    assert 0 < len(ys) == keep.sum() < len(y)
    assert np.array_equal(ys, y[keep]) and np.array_equal(xs, x[keep])
    few = tmp_path / "few.npz"
    assert main(["data", "subset", str(biwi_npz["val"]), "--n", "5", "--out", str(few)]) == 0
    _, yf = load_npz(few)
    assert np.array_equal(yf, y[np.linspace(0, len(y) - 1, 5).astype(int)])
    both = tmp_path / "both.npz"
    assert main(["data", "subset", str(few), str(side), "--out", str(both)]) == 0
    assert np.array_equal(load_npz(both)[1], np.concatenate([yf, ys]))
    assert main(["data", "subset", str(biwi_npz["val"]), "--yaw", "150,160", "--out", str(few)]) == 2
    assert main(["data", "subset", str(few), str(side), "--n", "2", "--out", str(both)]) == 2

    # Each row keeps its sequence through subset, join and halves, so a derived set can still be split by group.
    from headpose.data.npz import load_groups

    g = load_groups(biwi_npz["val"])
    assert sorted(set(g.tolist())) == ["04", "11"]
    assert np.array_equal(load_groups(side), g[keep])
    assert np.array_equal(load_groups(both), np.concatenate([load_groups(few), g[keep]]))
    assert main(["data", "halves", str(side), "--out", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 0
    assert np.array_equal(load_groups(tmp_path / "b.npz"), g[keep][1::2])


def test_device_carry_round_trip(tmp_path, biwi_npz):
    """scripts/device_data.py (sets carried to the GPU machine in ≤ 64 MiB calls): real BIWI crops and a
    labels-only set on the same crops with masked (NaN) angles come back equal, array for array, from parts spread
    over several carry folders; a missing folder is an error, not a short set."""
    import importlib.util
    import shutil
    from pathlib import Path

    from headpose.data.npz import save_npz

    spec = importlib.util.spec_from_file_location("device_data", Path(__file__).parents[1] / "scripts" /
                                                  "device_data.py")
    dd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dd)
    with np.load(biwi_npz["val"]) as d:
        src = {k: d[k] for k in d.files}
    taught = src["pose"] + 1.5
    taught[::7, 1:] = np.nan
    save_npz(tmp_path / "taught.npz", src["image"], taught)
    dd.pack(tmp_path / "carry", [biwi_npz["val"], tmp_path / "taught.npz"], part_mb=0.3, carry_mb=0.7)
    folders = sorted((tmp_path / "carry").glob("c*"))
    assert len(folders) >= 2 and len(list((tmp_path / "carry").glob("c*/*.npz"))) >= 4
    dd.unpack(tmp_path / "carry", tmp_path / "back")
    for original, name in ((biwi_npz["val"], "val"), (tmp_path / "taught.npz", "taught")):
        with np.load(original) as a, np.load(tmp_path / "back" / f"{name}.npz") as b:
            assert sorted(a.files) == sorted(b.files)
            for k in a.files:
                assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k
    assert np.isnan(np.load(tmp_path / "back" / "taught.npz")["pose"][7, 1])
    with pytest.raises(SystemExit, match="taught: the images of val, which it shares, are not here"):
        dd.unpack(tmp_path / "carry", tmp_path / "again", only=["taught"])
    shutil.rmtree(next(f for f in folders if any(f.glob("val.p1.npz")) or any(f.glob("val.p2.npz"))))
    with pytest.raises(SystemExit, match="val: .* images present"):
        dd.unpack(tmp_path / "carry", tmp_path / "again")


def test_prepare_checks_its_outputs_before_the_work(tmp_path, capsys):
    """Wrong output names and places, and contradictory split options, are one line each before any crop is made;
    a split with an empty side writes neither file and fails."""
    from conftest import link_biwi

    src = link_biwi(tmp_path / "biwi", ["02", "04"], every=60)
    (tmp_path / "a_file").write_text("x")
    for args, words in [(["--out", str(tmp_path / "x.txt")], "the packed set is an .npz file"),
                        (["--out", str(tmp_path / "a_file" / "x.npz")], "exists and is not a folder"),
                        (["--out", str(tmp_path / "o.npz"), "--split", "0.5", "--holdout", "04"],
                         "give --split (draw the held-out groups) or --holdout (name them), not both")]:
        assert main(["prepare", "biwi", "--src", str(src), *args, "--workers", "1"]) == 2
        assert words in capsys.readouterr().err
    assert not list(tmp_path.glob("*.npz"))
    for f in (src / "04").glob("*_pose.bin"):  # every image of sequence 04 loses its label
        f.unlink()
    out = tmp_path / "s.npz"
    assert main(["prepare", "biwi", "--src", str(src), "--out", str(out), "--holdout", "04", "--workers", "1"]) == 1
    assert "s_test.npz: the split leaves it empty" in capsys.readouterr().err
    assert not list(tmp_path.glob("s_*.npz"))
