"""The Python API on real BIWI frames: ``PoseResult``, ``FacePose.rotation`` and keypoints, ``est(path)``,
``est.stream`` over every kind of source, face tracks and One-Euro smoothing, ``predict_crops`` on lists.

The pose model is the bundled one when the package has it (conftest ``pose_model``); the checks on directions
(keypoints, mirror, tracks) hold for any model, the ones on angles compare the API's paths with each other.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import ROW_KEYS as KEYS
from conftest import json_rows, write_video

from headpose import FacePose, PoseResult
from headpose.errors import HeadposeError
from headpose.geometry import ypr_to_matrix
from headpose.track import FaceTracker, OneEuro


def test_pose_result_is_a_list_with_arrays_rows_and_a_plot(est, frames):
    files, images = frames
    res = est(images[0])
    assert isinstance(res, PoseResult) and isinstance(res, list) and len(res) == 1
    assert isinstance(res[0], FacePose) and [f for f in res] == list(res)
    np.testing.assert_array_equal(res.angles, np.array([res[0].angles], np.float32))
    np.testing.assert_array_equal(res.boxes, np.array([res[0].box], np.float32))
    assert res.image_shape == images[0].shape and res.frame == 0 and res.time_s is None
    assert set(res.speed) == {"detect", "pose"} and all(v > 0 for v in res.speed.values())
    rows = res.to_rows()
    assert json.loads(res.to_json()) == rows and set(rows[0]) == KEYS and rows[0]["track"] is None
    assert rows[0]["yaw"] == pytest.approx(res[0].yaw, abs=1e-3)
    canvas = res.plot()
    assert canvas.shape == images[0].shape and (canvas != images[0]).any()
    cube = res.plot(style="cube")
    assert (cube != canvas).any()
    with pytest.raises(HeadposeError, match="axis, cube"):
        res.plot(style="arrows")
    # A path reads the same picture; a bad one is an error naming it.
    by_path = est(files[0])
    assert by_path.source == str(files[0])
    np.testing.assert_allclose(by_path.angles, res.angles, atol=1e-4)
    with pytest.raises(HeadposeError, match="nope.png"):
        est(files[0].with_name("nope.png"))
    df = pytest.importorskip("pandas").DataFrame
    assert isinstance(res.to_df(), df) and list(res.to_df()["yaw"]) == [rows[0]["yaw"]]


def test_rotation_and_named_keypoints_follow_the_face(est, frames):
    """The rotation is the one the drawing uses, a proper rotation whose forward axis leans the way yaw says;
    the keypoints are named from the subject's side (right eye on the image's left for a frontal face)."""
    _, images = frames
    f = est(images[0])[0]
    r = f.rotation
    np.testing.assert_allclose(r, ypr_to_matrix(f.yaw, f.pitch, f.roll))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)
    assert np.sign(r[0, 2]) == -np.sign(f.yaw) or abs(f.yaw) < 1  # positive yaw: forward axis to image left
    kp = f.named_keypoints
    assert list(kp) == ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"]
    assert kp["right_eye"][0] < kp["left_eye"][0] and kp["right_ear"][0] < kp["left_ear"][0]
    assert kp["nose_tip"][1] < kp["mouth"][1]  # image y grows downwards
    d = f.to_dict(keypoints=True)
    assert d["keypoints"]["nose_tip"] == [round(kp["nose_tip"][0], 2), round(kp["nose_tip"][1], 2)]
    # The mirror image: yaw and roll change sign, the keypoint names swap sides with the face.
    m = est(images[0][:, ::-1].copy())[0]
    assert np.sign(m.yaw) == -np.sign(f.yaw) or abs(f.yaw) < 2
    assert m.named_keypoints["right_eye"][0] < m.named_keypoints["left_eye"][0]


def test_stream_over_every_kind_of_source(est, frames, tmp_path):
    files, images = frames
    single = np.concatenate([est(im).angles for im in images])
    # an iterable of frames: time from the given rate, one track
    res = list(est.stream(iter(images), batch=4, fps=10))
    assert [r.frame for r in res] == list(range(10)) and [r.source for r in res] == ["frames"] * 10
    assert [r.time_s for r in res] == pytest.approx([i / 10 for i in range(10)])
    np.testing.assert_allclose(np.concatenate([r.angles for r in res]), single, atol=1e-3)
    assert {f.track for r in res for f in r} == {1}
    # a folder of images: untracked, one result per file
    folder = tmp_path / "imgs"
    folder.mkdir()
    for f in files[:3]:
        (folder / f.name).symlink_to(f)
    res = list(est.stream(folder))
    assert [r.source for r in res] == [str(folder / f.name) for f in files[:3]]
    assert all(r.time_s is None and r[0].track is None for r in res)
    np.testing.assert_allclose(np.concatenate([r.angles for r in res]), single[:3], atol=1e-3)
    # a video file: its own frame rate and length
    video = write_video(tmp_path / "clip.mp4", images, fps=10)
    res = list(est.stream(video, workers=2))
    assert len(res) == 10 and res[0].fps == pytest.approx(10) and res[0].frame_count == 10
    assert [r.time_s for r in res] == pytest.approx([i / 10 for i in range(10)])
    assert all(len(r) == 1 and r[0].track == 1 for r in res)
    assert np.abs(np.concatenate([r.angles for r in res]) - single).mean() < 3  # the same faces, re-encoded
    # one array, and nonsense
    assert len(list(est.stream(images[0]))) == 1
    with pytest.raises(HeadposeError, match="cannot read faces from a float"):
        list(est.stream(1.5))


def test_two_faces_keep_their_tracks(est, frames):
    """A clip with the person twice side by side, the right copy turned 25° in the image plane: two tracks that
    keep their ids frame after frame, whichever face the detector lists first, and each id keeps its roll."""
    _, images = frames
    turn = cv2.getRotationMatrix2D((200, 240), 25.0, 1.0)  # counter-clockwise: roll changes by about -25°
    pairs = [np.hstack([im[:, 120:520], cv2.warpAffine(im[:, 120:520], turn, (400, 480))]) for im in images]
    res = list(est.stream(iter(pairs)))
    assert all(len(r) == 2 for r in res)
    left = [min(r, key=lambda f: f.box[0]) for r in res]
    right = [max(r, key=lambda f: f.box[0]) for r in res]
    assert len({f.track for f in left}) == 1 and len({f.track for f in right}) == 1
    assert left[0].track != right[0].track
    by_track = {f.track: [] for f in left + right}
    for r in res:
        for f in r:
            by_track[f.track].append(f.roll)
    rolls = {k: float(np.mean(v)) for k, v in by_track.items()}
    assert 15 < rolls[left[0].track] - rolls[right[0].track] < 35


def test_one_euro_filter():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0
    f = OneEuro()
    assert [f(5.0, s) for s in t[:5]] == [5.0] * 5  # a constant stays constant
    noisy = 10 + rng.normal(0, 2, len(t))
    f = OneEuro()
    out = np.array([f(x, s) for x, s in zip(noisy, t)])
    assert out[30:].std() < noisy[30:].std() / 2.5  # jitter at rest is damped
    assert abs(out[30:].mean() - 10) < 0.5  # without a bias
    f = OneEuro()
    ramp = 60 * t  # a head turning at 60°/s
    out = np.array([f(x, s) for x, s in zip(ramp, t)])
    assert 0.5 < np.abs(out - ramp)[60:].max() < 3  # followed with a little lag
    with pytest.raises(ValueError):
        OneEuro(min_cutoff=0)


def test_tracker_ids_and_smoothing():
    def face(x, yaw):
        return FacePose((x, 100.0, x + 80.0, 180.0), 0.9, yaw, 0.0, 0.0)

    tr = FaceTracker()
    a = tr.update([face(100, 10), face(400, -10)], 0, 0.0)
    b = tr.update([face(404, -11), face(103, 11)], 1, 0.033)  # listed the other way round, moved a little
    assert [f.track for f in a] == [1, 2] and [f.track for f in b] == [2, 1]
    assert b[0].yaw == -11  # untouched without smoothing
    assert tr.update([], 10, 0.33) == []
    assert [f.track for f in tr.update([face(100, 10)], 30, 1.0)] == [3]  # gone too long: a new track
    sm = FaceTracker(smooth=True)
    rng = np.random.default_rng(1)
    raw = 20 + rng.normal(0, 3, 60)
    out = [sm.update([face(100, y)], i, i / 30)[0].yaw for i, y in enumerate(raw)]
    assert np.std(out[15:]) < np.std(raw[15:]) / 2


def test_predict_crops_takes_lists_of_any_size(est, frames):
    from headpose.detect import crop_face

    _, images = frames
    faces = [est(im)[0] for im in images[:3]]
    crops = [crop_face(im, f.box, est.margin, s) for im, f, s in zip(images, faces, (64, 97, 150))]
    same = est.predict_crops(np.stack([cv2.resize(c, (64, 64), interpolation=cv2.INTER_AREA if len(c) > 64
                                                   else cv2.INTER_LINEAR) for c in crops]))
    np.testing.assert_allclose(est.predict_crops(crops), same, atol=1e-4)
    grey = [cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops]
    as_three = est.predict_crops(np.stack([np.repeat(g[..., None], 3, 2) for g in
                                           (cv2.resize(g, (64, 64), interpolation=cv2.INTER_AREA
                                                       if len(g) > 64 else cv2.INTER_LINEAR) for g in grey)]))
    np.testing.assert_allclose(est.predict_crops(grey), as_three, atol=1e-4)
    assert est.predict_crops([]).shape == (0, 3)
    with pytest.raises(HeadposeError, match="crop 1 is 64×80"):
        est.predict_crops([crops[0], np.zeros((80, 64, 3), np.uint8)])


def test_cli_smooth_and_cube_on_a_video(pose_model, frames, tmp_path):
    """`predict --smooth --draw cube`: the rows carry frame times and one track; smoothing keeps the angles close
    to the raw ones on this slow head (and changes them)."""
    from headpose.cli import main

    _, images = frames
    video = write_video(tmp_path / "clip.mp4", images, fps=10)
    raw, smooth = tmp_path / "raw.jsonl", tmp_path / "smooth.jsonl"
    assert main(["predict", str(video), "--model", str(pose_model), "--json", str(raw)]) == 0
    assert main(["predict", str(video), "--model", str(pose_model), "--json", str(smooth), "--smooth",
                 "--draw", "cube", "--out", str(tmp_path / "o")]) == 0
    r, s = json_rows(raw), json_rows(smooth)
    assert [x["time_s"] for x in s] == pytest.approx([i / 10 for i in range(10)])
    assert {x["track"] for x in s} == {1}
    d = np.array([[x[k] - y[k] for k in ("yaw", "pitch", "roll")] for x, y in zip(r, s)])
    assert d[0].tolist() == [0, 0, 0] and np.abs(d).max() < 5 and np.abs(d).max() > 0
    assert (tmp_path / "o" / "clip.mp4").stat().st_size > 0
