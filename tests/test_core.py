"""Core: the model, its legacy-weights parity, train → evaluate → export, and CLI errors — on real BIWI data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA, SEED_H5, SEED_TFLITE, assert_int8_with_float_fusion, run_cli

keras = pytest.importorskip("keras")

from headpose.data.npz import load_npz, save_npz  # noqa: E402
from headpose.runtime import open_model  # noqa: E402


def _biwi_crops(every: int = 60) -> np.ndarray:
    import cv2

    files = sorted(DATA.glob("biwi_crops/*/*_rgb.jpg"))[::every]
    return np.stack([cv2.resize(cv2.imread(str(f)), (64, 64), interpolation=cv2.INTER_AREA) for f in files])


def test_seed_h5_matches_seed_tflite():
    """Our SSR-Net-MT with the original project's .h5 weights gives the seed .tflite's angles within 0.01°."""
    from headpose.model import load_model

    crops = _biwi_crops()
    assert len(crops) > 150
    ours = np.asarray(load_model(SEED_H5)(crops.astype(np.float32), training=False))
    theirs = open_model(SEED_TFLITE)(crops)
    assert np.abs(ours - theirs).max() < 0.01
    assert np.abs(theirs).max() > 30  # real, varied poses, not a degenerate comparison


def test_keras_file_roundtrip_without_code(tmp_path):
    """A saved .keras loads in safe mode (no Lambda, no pickled code) and gives the same angles."""
    from headpose.model import build_model, load_legacy_h5, load_model

    m = load_legacy_h5(build_model(), SEED_H5)
    m.save(tmp_path / "m.keras")
    m2 = load_model(tmp_path / "m.keras")
    x = _biwi_crops(200).astype(np.float32)
    np.testing.assert_allclose(np.asarray(m2(x)), np.asarray(m(x)), atol=1e-4)
    assert not any(type(layer).__name__ == "Lambda" for layer in m2.layers)
    cfg = m2.get_layer("pred_pose").get_config()
    assert cfg["stage_num"] == [3, 3, 3] and cfg["lambda_d"] == 1.0 and cfg["v"] == 99.0


def test_model_options():
    from headpose.model import build_model, model_width, to_float32

    m = build_model(img_size=64, channels=1, stage_num=(3, 5, 3), lambda_d=0.5)
    assert m.input_shape == (None, 64, 64, 1) and m.output_shape == (None, 3)
    assert m.get_layer("stage2_reshape").output.shape[1:] == (3, 5)
    full, lite = build_model(), build_model(width=0.5, precision="bfloat16")
    assert model_width(full) == 1.0 and model_width(lite) == 0.5
    assert [lite.get_layer(f"s_sep{i}").filters for i in range(1, 8)] == [8, 16, 16, 32, 32, 64, 64]
    assert lite.get_layer("stage1_x_conv").filters == 32 and lite.count_params() < 0.45 * full.count_params()
    assert lite.get_layer("x_bn3").dtype_policy.name == "mixed_bfloat16"
    assert lite.get_layer("pred_pose").dtype_policy.name == "float32"  # heads and fusion stay float32
    f32 = to_float32(lite)
    assert model_width(f32) == 0.5 and {layer.dtype_policy.name for layer in f32.layers} == {"float32"}
    x = _biwi_crops(400).astype(np.float32)
    np.testing.assert_allclose(np.asarray(f32(x)), np.asarray(lite(x)), atol=1.0)  # bf16 rounding only


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, biwi_npz):
    """A few epochs on the small real BIWI slice (the suite's one training run), then resumed for one more."""
    from headpose.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "r"
    cfg = TrainConfig(data=[str(biwi_npz["train"])], val=[str(biwi_npz["val"])], out=str(out), epochs=3,
                      batch_size=32, bn_momentum=0.9, seed=1)
    train(cfg)
    cfg.epochs = 4
    train(cfg, resume=True)
    return out


def test_training_learns_and_resumes(trained_run, biwi_npz):
    _, pose = load_npz(biwi_npz["val"])
    zeros_mae = float(np.abs(pose).mean())
    rows = (trained_run / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,loss,val_mae")
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]  # resumed at epoch 4, not from scratch
    state = json.loads((trained_run / "state.json").read_text())
    assert state["epoch"] == 4
    assert state["best_val_mae"] < 0.5 * zeros_mae, (state, zeros_mae)
    for f in ("best.keras", "last.keras", "history.png", "config.json"):
        assert (trained_run / f).stat().st_size > 0
    assert (trained_run / "history.png").read_bytes()[:4] == b"\x89PNG"


def test_angle_filter_drops_and_counts(tmp_path, biwi_npz):
    from headpose.train import ArraySet

    img, pose = load_npz(biwi_npz["val"], mmap=False)
    pose = pose.copy()
    pose[:5, 0] = 120.0
    save_npz(tmp_path / "wide.npz", img, pose)
    s = ArraySet([str(tmp_path / "wide.npz")])
    assert s.dropped == 5 and len(s) == len(pose) - 5


@pytest.fixture(scope="module")
def exported(trained_run, biwi_npz, tmp_path_factory):
    from headpose.export import export

    d = tmp_path_factory.mktemp("export")
    best = trained_run / "best.keras"
    res = {fmt: export(best, fmt, d / f"m.{fmt}".replace("tflite-int8", "int8.tflite"), calib=biwi_npz["val"])
           for fmt in ("tflite", "tflite-int8", "onnx")}
    return best, res


def test_export_parity(exported):
    _, res = exported
    assert res["tflite"]["max_diff"] < 0.01
    assert res["onnx"]["max_diff"] < 0.01
    assert res["tflite-int8"]["bytes"] < 0.8 * res["tflite"]["bytes"]  # int8 but the float layers (export.FLOAT_LAYERS)
    assert res["tflite-int8"]["mean_diff"] < 2.0  # a 4-epoch model; the shipped model's bound is tested below
    assert "crops of" in res["tflite"]["checked_on"]


def test_int8_keeps_a_third_block_float_in_narrow_networks():
    """The int8 export's float layers follow the network's width: the original width keeps the first two blocks of
    each stream float, a half-width (lite) network the first three (its fewer channels round coarser)."""
    from headpose.export import FLOAT_LAYERS, FLOAT_LAYERS_NARROW, float_layer_re, float_layers_for
    from headpose.model import build_model

    assert float_layers_for(build_model(64, 3)) == FLOAT_LAYERS
    assert float_layers_for(build_model(64, 3, width=0.5)) == FLOAT_LAYERS_NARROW
    wide, narrow = float_layer_re(FLOAT_LAYERS), float_layer_re(FLOAT_LAYERS_NARROW)
    assert wide.match("x_sep2") and not wide.match("s_sep3") and narrow.match("s_sep3") and narrow.match("x_bn3_1")
    assert not narrow.match("x_sep4") and narrow.match("stage2_pred")


def test_export_check_reads_the_file_alone(exported, biwi_npz, tmp_path):
    """Re-exporting beside a card that asks for mirror averaging (as the bundled full model's does) still checks
    the written file against Keras one pass to one pass: it used to compare the mirror-averaged file with the
    single Keras pass and report degrees of difference for an exact export."""
    from headpose.export import export

    best, _ = exported
    (tmp_path / "m.json").write_text('{"flip": true}')
    res = export(best, "tflite", tmp_path / "m.tflite", calib=biwi_npz["val"], quiet=True)
    assert res["max_diff"] < 0.01, res


def test_int8_on_crops_not_used_for_calibration(exported, biwi_npz):
    """The int8 file was calibrated on the validation crops; on the training sequences' crops (other people) it
    still follows the float model, and its fusion ops are float (quantising them doubles the drift)."""
    from headpose.model import load_model

    best, res = exported
    assert_int8_with_float_fusion(res["tflite-int8"]["path"])
    x, _ = load_npz(biwi_npz["train"])
    x = np.asarray(x[::3])
    ref = np.asarray(load_model(best).predict(x.astype(np.float32), batch_size=256, verbose=0))
    drift = np.abs(open_model(res["tflite-int8"]["path"])(x) - ref)
    assert len(x) > 300 and drift.mean() < 2.0, drift.mean(axis=0)


def test_evaluate_all_formats(exported, biwi_npz, tmp_path):
    from headpose.evaluate import evaluate

    best, res = exported
    models = [best, res["tflite"]["path"], res["onnx"]["path"], res["tflite-int8"]["path"]]
    out = {str(m): evaluate(m, [biwi_npz["val"]], quiet=True)[str(biwi_npz["val"])] for m in models}
    ref = out[str(best)]
    for m in models[1:3]:
        assert abs(out[str(m)]["mean"] - ref["mean"]) < 0.01
    assert abs(out[models[3]]["mean"] - ref["mean"]) < 1.0
    # legacy .h5 and the seed .tflite agree and are accurate on real BIWI crops
    r = evaluate(SEED_H5, [biwi_npz["val"]], json_out=tmp_path / "e.json", plot=tmp_path / "e.png", quiet=True)
    r2 = evaluate(SEED_TFLITE, [biwi_npz["val"]], quiet=True)
    key = str(biwi_npz["val"])
    assert r[key]["n"] == r2[key]["n"] > 200
    assert abs(r[key]["mean"] - r2[key]["mean"]) < 0.01 and r[key]["mean"] < 5
    assert json.loads((tmp_path / "e.json").read_text())[key]["n"] == r[key]["n"]
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def test_error_by_yaw_bins_every_sample(biwi_npz, tmp_path):
    """The comparison figure (`headpose evaluate --model A B --plot`, the model card's): every sample lands in
    one bin of |yaw| (±99° in the last), and the bins' means weighted by their counts give back the mean error;
    two models on one file give a table each in the JSON (the seed's .h5 and .tflite: the same numbers)."""
    from headpose.cli import main
    from headpose.evaluate import error_by_yaw, predict_npz

    _, _, counts = error_by_yaw(np.array([0.0, -14.9, 15.0, 98.0, 99.0, -99.0]), np.ones((6, 3)))
    assert counts.tolist() == [2, 1, 0, 0, 0, 0, 3]
    pred, true = predict_npz(open_model(SEED_TFLITE), biwi_npz["val"])
    err = np.abs(pred - true)
    centres, mean, counts = error_by_yaw(true[:, 0], err)
    assert counts.sum() == len(true) and np.isclose(np.nansum(mean * counts) / len(true), err.mean(), atol=1e-4)
    assert np.isnan(mean[counts == 0]).all() and (centres[1:] > centres[:-1]).all()
    data = str(biwi_npz["val"])
    args = ["evaluate", "--model", SEED_H5, SEED_TFLITE, "--data", data, "--json", tmp_path / "c.json", "--plot",
            tmp_path / "c.png"]
    assert main(list(map(str, args))) == 0
    res = json.loads((tmp_path / "c.json").read_text())
    h5, tflite = str(SEED_H5), str(SEED_TFLITE)
    assert list(res) == [h5, tflite]
    assert abs(res[h5][data]["mean"] - res[tflite][data]["mean"]) < 0.01
    assert abs(res[tflite][data]["mean"] - float(err.mean())) < 0.01
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, biwi_npz):
    d = tmp_path_factory.mktemp("bad")
    img, pose = load_npz(biwi_npz["val"], mmap=False)
    np.savez(d / "nopose.npz", image=img[:4])
    np.savez(d / "shape.npz", image=img[:4, :, :32], pose=pose[:4])
    nan = pose[:4].copy()
    nan[2] = np.nan  # one NaN angle marks an unknown angle (allowed); all three is no label at all
    np.savez(d / "nan.npz", image=img[:4], pose=nan)
    np.savez(d / "good.npz", image=img[:4], pose=pose[:4])
    (d / "text.npz").write_text("not a zip")
    (d / "fake.tflite").write_bytes(b"\x00" * 64)
    (d / "model.txt").write_text("hello")
    return d


@pytest.mark.parametrize("args, needle", [
    (["evaluate", "--model", SEED_TFLITE, "--data", "{d}/missing.npz"], "missing.npz: no such file"),
    (["evaluate", "--model", SEED_TFLITE, "--data", "{d}/nopose.npz"], "nopose.npz: no 'pose' array"),
    (["evaluate", "--model", SEED_TFLITE, "--data", "{d}/shape.npz"], "shape.npz: 'image' must be N×S×S×3"),
    (["evaluate", "--model", SEED_TFLITE, "--data", "{d}/nan.npz"], "nan.npz: 1 poses are infinite or have no known"),
    (["evaluate", "--model", SEED_TFLITE, "--data", "{d}/text.npz"], "text.npz: not an .npz file"),
    (["evaluate", "--model", "{d}/fake.tflite", "--data", "{d}/nan.npz"], "fake.tflite: not a loadable TFLite"),
    (["evaluate", "--model", "{d}/model.txt", "--data", "{d}/nan.npz"], "model.txt: unknown model format"),
    (["export", "--model", "{d}/fake.tflite", "--format", "onnx", "--out", "{d}/x.onnx"], "must be .keras or .h5"),
    (["train", "--data", "{d}/nopose.npz", "--val-split", "0.2", "--out", "{d}/run"], "nopose.npz: no 'pose'"),
    (["train", "--data", "{d}/good.npz", "--val-split", "0.5", "--out", "{d}/run", "--batch-size", "1", "--width",
      "0.5", "--init", SEED_H5], "a width 1 network, this run is width 0.5"),
])
def test_cli_errors_are_one_line(bad_files, args, needle):
    r = run_cli(*[str(a).format(d=bad_files) for a in args])
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("headpose: error:") and needle in last, r.stderr
    assert "Traceback" not in r.stderr


def test_cli_unknown_format_exits_2(tmp_path):
    r = run_cli("export", "--model", "x.keras", "--format", "tflite-int4", "--out", tmp_path / "x")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "Traceback" not in r.stderr


def test_rotation_augmentation_labels_follow_the_image(biwi_npz):
    """Rotating real crops in the image plane changes their labels exactly as the seed model sees them."""
    import cv2

    from headpose.geometry import matrix_to_ypr, rotate_in_plane, ypr_to_matrix

    rng = np.random.default_rng(0)
    for ypr in rng.uniform([-85, -60, -60], [85, 60, 60], (200, 3)):
        np.testing.assert_allclose(matrix_to_ypr(ypr_to_matrix(*ypr)), ypr, atol=1e-3)
    np.testing.assert_allclose(rotate_in_plane([0, 0, 0], 20), [0, 0, -20], atol=1e-4)

    img, pose = load_npz(biwi_npz["val"], mmap=False)
    img, pose = img[::2], pose[::2]
    seed = open_model(SEED_TFLITE)
    c = (img.shape[1] - 1) / 2
    angles = rng.choice([-30.0, 30.0], len(img))
    rot = np.stack([cv2.warpAffine(im, cv2.getRotationMatrix2D((c, c), a, 1.0), im.shape[1::-1],
                                   borderMode=cv2.BORDER_REPLICATE) for im, a in zip(img, angles)])
    new = np.stack([rotate_in_plane(p, a) for p, a in zip(pose, angles)])
    pred = seed(rot)
    err_new, err_old = np.abs(pred - new).mean(axis=0), np.abs(pred - pose).mean(axis=0)
    assert err_new[2] < 8 and err_old[2] > 20, (err_new, err_old)  # roll follows the rotation
    assert err_new.mean() < 0.5 * err_old.mean()


def test_arrayset_batches_keep_sample_order(tmp_path, biwi_npz):
    """A --val-split subset across several files: images and labels come back in the order asked for
    (predictions are compared with labels row by row)."""
    from headpose.train import ArraySet

    s = ArraySet([str(biwi_npz["train"]), str(biwi_npz["val"])])
    sub = s.subset(np.random.default_rng(0).permutation(len(s))[:300])
    idx = np.random.default_rng(1).permutation(len(sub))[:100]
    x, y = sub.take(idx)
    ref_x = np.stack([np.asarray(sub.images[f][r]) for f, r in zip(sub.file[idx], sub.row[idx])])
    ref_y = np.stack([sub.poses[f][r] for f, r in zip(sub.file[idx], sub.row[idx])])
    assert len(set(sub.file[idx])) == 2
    np.testing.assert_array_equal(x, ref_x)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(sub.labels(idx), ref_y)

    img, pose = load_npz(biwi_npz["val"], mmap=False)
    save_npz(tmp_path / "small.npz", img[:, ::2, ::2], pose)
    from headpose.errors import HeadposeError

    with pytest.raises(HeadposeError, match="same --size"):
        ArraySet([str(biwi_npz["val"]), str(tmp_path / "small.npz")])


def test_yaw_balanced_batches(biwi_npz):
    """--balance 1 draws every 10° |yaw| bin about equally often; 0 keeps every sample once per epoch."""
    import keras

    from headpose.train import ArraySet, TrainConfig, batches, yaw_balance

    p = yaw_balance(np.array([1.0, 2.0, 3.0, -45.0, np.nan]), 1.0)
    np.testing.assert_allclose(p, [1 / 9, 1 / 9, 1 / 9, 1 / 3, 1 / 3])  # three bins: [0, 10), [40, 50), unknown
    np.testing.assert_allclose(yaw_balance(np.array([1.0, 2.0, 50.0]), 0.0), [1 / 3] * 3)
    data = ArraySet([str(biwi_npz["train"])])
    yaw = np.abs(data.labels(np.arange(len(data)))[:, 0])
    bins = np.floor(yaw / 10).astype(int)
    for balance in (0.0, 1.0):
        seq = batches(keras, data, TrainConfig(batch_size=32, balance=balance, augment=False), 64, train=True)
        order = np.concatenate([seq.order for _ in range(3) if seq.on_epoch_end() is None])
        share = np.bincount(bins[order], minlength=bins.max() + 1) / len(order)
        if balance == 0.0:
            np.testing.assert_array_equal(np.sort(seq.order), np.arange(len(data)))
            np.testing.assert_allclose(share, np.bincount(bins) / len(bins))
        else:
            present = np.bincount(bins) > 0
            assert share[present].max() < 2 * share[present].min() < 4 / present.sum()


def test_resumed_batches_continue_the_epochs(biwi_npz):
    """A run resumed at epoch k draws epoch k's order and augmentation, as the run that was never stopped does
    (not epoch 0's again)."""
    import keras

    from headpose.train import ArraySet, TrainConfig, batches

    data = ArraySet([str(biwi_npz["train"])])
    cfg = TrainConfig(batch_size=32, workers=1)
    straight = batches(keras, data, cfg, 64, train=True)
    for _ in range(3):
        straight.on_epoch_end()
    resumed = batches(keras, data, cfg, 64, train=True, first_epoch=3)
    assert resumed.epoch == straight.epoch == 3
    np.testing.assert_array_equal(resumed.order, straight.order)
    assert not np.array_equal(resumed.order, batches(keras, data, cfg, 64, train=True).order)
    np.testing.assert_array_equal(resumed[5][0], straight[5][0])  # the same augmented batch


def test_erase_setting_reaches_the_batches(biwi_npz):
    """``erase`` in a training config blanks a rectangle in the crops ``headpose train`` sees: the same batch with
    erase 1 and 0 differs in every crop, within one box of at most about a fifth of the crop, and not in labels."""
    import keras

    from headpose.train import ArraySet, TrainConfig, batches

    data = ArraySet([str(biwi_npz["train"])])
    (x0, y0), (x1, y1) = (batches(keras, data, TrainConfig(batch_size=32, workers=1, erase=e), 64, train=True)[2]
                          for e in (0.0, 1.0))
    np.testing.assert_array_equal(y0, y1)
    for a, b in zip(x0, x1):
        rows, cols = np.nonzero((a != b).any(axis=-1))
        assert len(rows) > 0
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box <= 0.25 * a.shape[0] * a.shape[1], box


def test_fused_batchnorm_trains_like_keras(biwi_npz):
    """The training speed-up (TensorFlow's fused batch norm) changes no number: same angles, gradients and
    moving statistics as Keras' own BatchNormalization, on a real batch through the seed weights."""
    import tensorflow as tf

    from headpose.model import build_model, load_legacy_h5
    from headpose.tfkernels import fuse_batchnorm

    img, pose = load_npz(biwi_npz["val"], mmap=False)
    x, y = tf.constant(img[:32].astype(np.float32)), tf.constant(pose[:32])
    ref = load_legacy_h5(build_model(bn_momentum=0.9), SEED_H5)
    fast = load_legacy_h5(build_model(bn_momentum=0.9), SEED_H5)
    assert fuse_batchnorm(fast) == 14

    def step(m):
        with tf.GradientTape() as tape:
            out = m(x, training=True)
            loss = tf.reduce_mean(tf.abs(out - y))
        return out.numpy(), [g.numpy() for g in tape.gradient(loss, m.trainable_weights)]

    (o_ref, g_ref), (o_fast, g_fast) = step(ref), step(fast)
    assert np.abs(o_ref - y.numpy()).mean() > 1  # a real loss, not a degenerate batch
    np.testing.assert_allclose(o_fast, o_ref, atol=2e-3)
    # relative error per weight tensor; the floor covers the conv biases right before a batch norm, whose true
    # gradient is zero (both sides are float noise there)
    floor = 1e-4 * max(np.linalg.norm(b) for b in g_ref)
    errs = [np.linalg.norm(a - b) / max(np.linalg.norm(b), floor) for a, b in zip(g_fast, g_ref)]
    assert max(errs) < 1e-2, max(errs)
    for lf, lr in zip(fast.layers, ref.layers):
        for wf, wr in zip(lf.non_trainable_weights, lr.non_trainable_weights):  # moving mean and variance
            np.testing.assert_allclose(np.asarray(wf), np.asarray(wr), rtol=1e-4, atol=1e-5)
    moved = np.abs(np.asarray(fast.get_layer("x_bn1").moving_mean) - np.asarray(
        load_legacy_h5(build_model(), SEED_H5).get_layer("x_bn1").moving_mean)).max()
    assert moved > 1e-3  # the statistics did update
    # inference is untouched
    np.testing.assert_allclose(np.asarray(fast(x, training=False)), np.asarray(ref(x, training=False)), atol=1e-4)


def test_cpu_bf16_flags_are_read():
    from headpose.train import cpu_has_bf16

    assert cpu_has_bf16("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n") is True
    assert cpu_has_bf16("processor\t: 0\nflags\t\t: fpu sse4_2 avx2 fma\n") is False  # AMD EPYC (Zen 3)
    assert cpu_has_bf16("Features\t: fp asimd bf16 i8mm\n") is True  # Arm
    assert cpu_has_bf16("") is None


def test_bfloat16_training_saves_float32(tmp_path, biwi_npz, capsys):
    """--precision bfloat16 learns, resumes in bfloat16, and its best.keras is a plain float32 model; on a CPU
    without bfloat16 arithmetic the run says it would be faster in float32."""
    from headpose.model import load_model
    from headpose.train import TrainConfig, cpu_has_bf16, train

    _, pose = load_npz(biwi_npz["val"])
    out = tmp_path / "bf16"
    cfg = TrainConfig(data=[str(biwi_npz["train"])], val=[str(biwi_npz["val"])], out=str(out), epochs=2,
                      batch_size=32, bn_momentum=0.9, seed=1, precision="bfloat16")
    train(cfg)
    assert ("no bfloat16 arithmetic" in capsys.readouterr().err) == (cpu_has_bf16() is False)
    cfg.epochs = 3
    train(cfg, resume=True)
    state = json.loads((out / "state.json").read_text())
    assert state["epoch"] == 3 and state["best_val_mae"] < 0.6 * float(np.abs(pose).mean())
    last = keras.saving.load_model(out / "last.keras")
    assert last.get_layer("x_sep1").dtype_policy.name == "mixed_bfloat16"
    best = load_model(out / "best.keras")
    assert {layer.dtype_policy.name for layer in best.layers} == {"float32"}
    raw = keras.saving.load_model(out / "best.keras", compile=False)
    assert {layer.dtype_policy.name for layer in raw.layers} == {"float32"}  # saved so, not converted on load


def test_stream_threads_set_before_tensorflow_starts():
    """`headpose train` gives each conv stream its own core: inter-op 2, intra-op cpus // 2 — only possible
    before TensorFlow starts, after which the call leaves the settings alone and says so."""
    code = ("import tensorflow as tf; from headpose.tfkernels import set_stream_threads as s; "
            "print(s(2), s(8)); tf.constant(1.0) + 1; t = tf.config.threading; "
            "print(s(2), t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["(1, 2) (4, 2)", "None 4 2"], r.stdout


#: `headpose train` pinned to two CPUs: it then runs one thread per op (intra-op cpus // 2), as on the 2-core
#: machine the repeatability is promised for, whatever this machine has
TRAIN_ON_TWO_CPUS = ("import os, sys; os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2]); "
                     "from headpose.cli import main; sys.exit(main(sys.argv[1:]))")


def test_training_is_repeatable(tmp_path, biwi_npz):
    """Two runs with the same data, settings and seed give the same weights bit for bit (each in a fresh
    process, as `headpose train` runs: one thread per op, so TensorFlow's reductions keep their order)."""
    from headpose.model import load_model

    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("cannot pin the training to two CPUs on this platform")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}  # as a user's shell runs it
    for run in ("a", "b"):
        args = ("train", "--data", biwi_npz["val"], "--val", biwi_npz["val"], "--epochs", "1", "--seed", "5",
                "--out", tmp_path / run)
        r = subprocess.run([sys.executable, "-c", TRAIN_ON_TWO_CPUS, *map(str, args)], capture_output=True,
                           text=True, timeout=300, env=env)
        assert r.returncode == 0, r.stderr
    a, b = (load_model(tmp_path / run / "last.keras").get_weights() for run in ("a", "b"))
    assert max(np.abs(x - y).max() for x, y in zip(a, b)) == 0.0
    fresh = load_model(tmp_path / "a" / "best.keras").get_weights()
    assert max(np.abs(x - y).max() for x, y in zip(a, fresh)) == 0.0  # one epoch: best is last


def test_soup_averages_weights(tmp_path, biwi_npz):
    """`headpose soup`: every weight (batch-norm statistics too) is the mean. The shipped model nudged by +d and by
    -d, averaged, reads real BIWI crops as the shipped model does, while either nudged copy alone reads them
    differently; networks that differ are refused."""
    from headpose.model import load_model
    from headpose.runtime import WEIGHTS

    base = load_model(WEIGHTS / "headpose_ssrnet_mt.keras")
    w0 = base.get_weights()
    rng = np.random.default_rng(0)
    d = [np.clip(rng.normal(0, 0.2, w.shape), -0.5, 0.5).astype(w.dtype) for w in w0]  # relative: variances stay > 0
    paths = []
    for sign in (1, -1):
        base.set_weights([w * (1 + sign * e) for w, e in zip(w0, d)])
        paths.append(tmp_path / f"nudged{sign:+d}.keras")
        base.save(paths[-1])
    soup = tmp_path / "soup.keras"
    assert run_cli("soup", "--model", *map(str, paths), "--out", str(soup)).returncode == 0
    for a, b in zip(load_model(soup).get_weights(), w0):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)  # a few float32 ulps
    x, _ = load_npz(biwi_npz["val"])
    x = np.asarray(x[:64])
    want = open_model(WEIGHTS / "headpose_ssrnet_mt.keras", flip=False)(x)  # one pass, as the soup (no card)
    assert np.abs(open_model(soup)(x) - want).max() < 0.01
    assert np.abs(open_model(paths[0])(x) - want).mean() > 0.5  # the nudge matters on its own
    r = run_cli("soup", "--model", str(paths[0]), str(WEIGHTS / "headpose_ssrnet_mt_lite.keras"), "--out", str(soup))
    assert r.returncode == 2 and "not the same network" in r.stderr


def test_freeze_streams_trains_the_heads_only(tmp_path, biwi_npz):
    """`--freeze-streams`: from the shipped lite model, the two conv streams (weights and batch-norm statistics)
    leave training exactly as they came in, in best.keras and last.keras and after --resume, while every stage head
    moves; without --init it is refused before any data is read."""
    from headpose.errors import HeadposeError
    from headpose.model import load_model, stream_layers
    from headpose.runtime import WEIGHTS
    from headpose.train import TrainConfig, train

    init = WEIGHTS / "headpose_ssrnet_mt_lite.keras"
    img, pose = load_npz(biwi_npz["train"], mmap=False)
    save_npz(tmp_path / "train.npz", img[::4], pose[::4])  # ~10 steps an epoch
    cfg = TrainConfig(data=[str(tmp_path / "train.npz")], val=[str(biwi_npz["val"])], out=str(tmp_path / "r"),
                      epochs=1, batch_size=32, lr=1e-3, width=0.5, init=str(init), freeze_streams=True, seed=4)
    train(cfg)

    def by_layer(path):
        m = load_model(path)
        streams = {layer.name for layer in stream_layers(m)}
        assert len(streams) == 28  # 7 separable convs and 7 batch norms in each of the two streams
        return ({(layer.name, i): w.numpy() for layer in m.layers for i, w in enumerate(layer.weights)}, streams)

    w0, streams = by_layer(init)
    cfg.epochs = 2
    for path in (tmp_path / "r/best.keras", tmp_path / "r/last.keras", None):
        if path is None:  # resumed for a second epoch: the streams stay frozen
            train(cfg, resume=True)
            path = tmp_path / "r/last.keras"
        w, _ = by_layer(path)
        for key, value in w.items():
            if key[0] in streams:
                np.testing.assert_array_equal(value, w0[key], err_msg=f"{path.name}: {key}")
        heads = {name for name, _ in w if name.startswith(("stage", "delta_s", "local_delta"))}
        moved = {name for (name, i), value in w.items() if name in heads and not np.array_equal(value, w0[name, i])}
        assert moved == heads, sorted(heads - moved)
    state = json.loads((tmp_path / "r/state.json").read_text())
    _, pose = load_npz(biwi_npz["val"])
    assert state["epoch"] == 2 and state["best_val_mae"] < 0.5 * float(np.abs(pose).mean())
    with pytest.raises(HeadposeError, match="--freeze-streams keeps the conv streams"):
        train(TrainConfig(data=["missing.npz"], val=cfg.val, out=str(tmp_path / "bad"), freeze_streams=True))


def test_ema_saves_the_average_and_keeps_it_for_resume(tmp_path, biwi_npz):
    """`--ema`: best.keras holds the moving average of the weights, last.keras the raw ones. One epoch from the
    shipped lite model, momentum 0.97 over ~20 steps: the average still sits between the start and the raw weights
    (without --ema best is last after one epoch, see above), and last.keras keeps the average for --resume."""
    from headpose.errors import HeadposeError
    from headpose.model import load_model
    from headpose.runtime import WEIGHTS
    from headpose.train import TrainConfig, train

    init = WEIGHTS / "headpose_ssrnet_mt_lite.keras"
    img, pose = load_npz(biwi_npz["train"], mmap=False)
    save_npz(tmp_path / "train.npz", img[::2], pose[::2])  # 658 crops: ~20 steps an epoch
    cfg = TrainConfig(data=[str(tmp_path / "train.npz")], val=[str(biwi_npz["val"])], out=str(tmp_path / "r"),
                      epochs=1, batch_size=32, lr=3e-4, width=0.5, init=str(init), ema=0.97, seed=3)
    train(cfg)
    w0, best, last = ([w.numpy() for w in load_model(p).trainable_weights]  # not batch-norm statistics
                      for p in (init, tmp_path / "r/best.keras", tmp_path / "r/last.keras"))

    def dist(a, b):
        return float(np.sqrt(sum(((x - y) ** 2).sum() for x, y in zip(a, b))))

    assert dist(last, w0) > 0 and 0 < dist(best, w0) < 0.8 * dist(last, w0), (dist(best, w0), dist(last, w0))
    assert dist(best, last) > 0.2 * dist(last, w0)
    _, pose = load_npz(biwi_npz["val"])
    state = json.loads((tmp_path / "r/state.json").read_text())
    assert state["best_val_mae"] < 0.5 * float(np.abs(pose).mean())  # the averaged weights are a working model
    resumed = keras.saving.load_model(tmp_path / "r/last.keras", compile=True)  # what --resume loads
    resumed.optimizer.finalize_variable_values(resumed.trainable_variables)  # its average, into the weights
    for a, b in zip((w.numpy() for w in resumed.trainable_weights), best):
        np.testing.assert_allclose(a, b, atol=1e-6)  # last.keras carries the average on
    with pytest.raises(HeadposeError, match="--ema must be in"):
        train(TrainConfig(data=cfg.data, val=cfg.val, out=str(tmp_path / "bad"), ema=1.0))
    for bad, why in (({"degrade": 1.5}, "--degrade is a fraction"), ({"grey": 0.7, "infrared": 0.5}, "together")):
        with pytest.raises(HeadposeError, match=why):
            train(TrainConfig(data=cfg.data, val=cfg.val, out=str(tmp_path / "bad"), **bad))
