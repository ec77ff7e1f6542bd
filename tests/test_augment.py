"""Training augmentation (``augment.augment_batch``): what each transform does to the pixels and the labels.

The geometric tests drive it with a scripted random source (every uniform draw at a chosen fraction of its range,
every coin at a chosen value), so one transform at a time can be checked exactly against a reference made here;
the last test runs it with its real random draws on real BIWI crops and asks the seed model (trained on 300W-LP,
the label convention) whether the new labels describe the new pictures, angle by angle.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import SEED_TFLITE

from headpose.augment import augment_batch, camera_defects, degrade_crop, erase_boxes
from headpose.data.npz import load_npz
from headpose.geometry import rotate_in_plane


class ScriptedRng:
    """Stands in for ``np.random.Generator``: ``uniform(lo, hi, size)`` gives ``lo + frac·(hi − lo)`` and
    ``random(size)`` gives ``coin`` everywhere. frac 0.5 = no zoom, shift, rotation, contrast or brightness change;
    coin 0.3 = every 'half of the time' choice taken (flip, rotation, black fill), blur (15%) not."""

    def __init__(self, frac: float = 0.5, coin: float = 0.3):
        self.frac, self.coin = frac, coin

    def uniform(self, low=0.0, high=1.0, size=None):
        low, high = np.asarray(low, float), np.asarray(high, float)
        return np.broadcast_to(low + self.frac * (high - low), np.broadcast_shapes(np.shape(low), size or ())).copy()

    def random(self, size=None):
        return np.full(size, self.coin)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return np.full(size, loc, float)


@pytest.fixture(scope="module")
def crops(biwi_npz):
    """16 real 64×64 BIWI crops and their labels (some turned well away from frontal)."""
    img, pose = load_npz(biwi_npz["val"], mmap=False)
    idx = np.argsort(-np.abs(pose).max(axis=1))[:16]
    return img[idx].copy(), pose[idx].copy()


def test_flip_mirrors_pixels_and_negates_yaw_and_roll(crops):
    img, pose = crops
    out, new = augment_batch(img, pose, ScriptedRng(coin=0.3), rotate=0.0)
    np.testing.assert_array_equal(out, img[:, :, ::-1])
    np.testing.assert_allclose(new, pose * [-1, 1, -1], atol=1e-6)
    # the other side of the coin: no flip, nothing changes
    out, new = augment_batch(img, pose, ScriptedRng(coin=0.7), rotate=0.0)
    np.testing.assert_array_equal(out, img)
    np.testing.assert_allclose(new, pose, atol=1e-6)
    out, new = augment_batch(img, pose, ScriptedRng(coin=0.3), flip=False, rotate=0.0)
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("frac", [0.9, 0.1])  # +24° and −24° with rotate=30
def test_rotation_label_is_the_applied_rotation(crops, frac):
    """Pixels turn as cv2.getRotationMatrix2D(angle) turns them (with the scripted zoom, shift, contrast and
    brightness), and the label is the head turned by that angle about the camera axis."""
    img, pose = crops
    rng = ScriptedRng(frac=frac, coin=0.3)  # turned, black fill, no blur (and flip=False)
    out, new = augment_batch(img, pose, rng, flip=False, rotate=30.0)
    angle = -30 + frac * 60
    s = img.shape[1]
    m = cv2.getRotationMatrix2D(((s - 1) / 2, (s - 1) / 2), angle, 0.8 + frac * 0.4)
    m[:, 2] += (-0.1 + frac * 0.2) * s
    for i in range(len(img)):
        ref = cv2.warpAffine(img[i], m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=(0, 0, 0))
        ref = cv2.convertScaleAbs(ref, alpha=0.7 + frac * 0.6, beta=-30 + frac * 60)
        np.testing.assert_array_equal(out[i], ref)
        np.testing.assert_allclose(new[i], rotate_in_plane(pose[i], angle), atol=1e-4)
    # a frontal face turned counter-clockwise by a: roll −a
    _, frontal = augment_batch(img[:1], np.zeros((1, 3), np.float32), rng, flip=False, rotate=30.0)
    np.testing.assert_allclose(frontal[0], [0, 0, -angle], atol=1e-4)


def test_erase_blanks_one_rectangle_and_keeps_the_labels(crops):
    """Scripted draws (area 0.11 of the crop, aspect 1, placed mid-way, colour 127.5): every crop loses exactly
    the 21×21 square at (22, 22) to grey 127, nothing else moves, and the labels stay; a coin above ``erase``
    leaves the crops whole."""
    img, pose = crops
    out, new = augment_batch(img, pose, ScriptedRng(coin=0.3), flip=False, rotate=0.0, erase=0.5)
    box = np.zeros(img.shape[:3], bool)
    box[:, 22:43, 22:43] = True
    assert (out[box] == 127).all()
    np.testing.assert_array_equal(out[~box], img[~box])
    np.testing.assert_allclose(new, pose, atol=1e-6)
    out, _ = augment_batch(img, pose, ScriptedRng(coin=0.3), flip=False, rotate=0.0, erase=0.2)
    np.testing.assert_array_equal(out, img)


def test_erase_boxes_real_draws():
    """Real draws: about the asked fraction of crops is hit, each box inside the crop, 2-20% of its area (to
    rounding), no side more than about three times the other."""
    s, n = 64, 4000
    boxes, colour = erase_boxes(np.random.default_rng(1), n, s, 0.3)
    top, left, h, w = boxes.T
    hit = h > 0
    assert abs(hit.mean() - 0.3) < 0.03
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= s).all() and (left + w <= s).all()
    area = h[hit] * w[hit] / s**2
    assert area.min() > 0.015 and area.max() < 0.22 and 0.08 < area.mean() < 0.14
    ratio = h[hit] / w[hit]
    assert ratio.min() > 0.3 and ratio.max() < 3.4 and ratio.min() < 0.4 and ratio.max() > 2.6
    assert colour.shape == (n, 3) and colour.min() >= 0 and colour.max() <= 255


def test_degrade_steps_match_their_references(crops):
    """Each camera defect alone is the OpenCV operation it names, and all zero leaves the crop as it was."""
    img = crops[0][0]
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(degrade_crop(img, 0, 0.0, 0, 0.0, 0, rng), img)
    line = np.zeros((5, 5), np.float32)
    line[2] = 0.2  # a horizontal 5-px line, turned by 0°
    np.testing.assert_array_equal(degrade_crop(img, 5, 0.0, 0, 0.0, 0, rng), cv2.filter2D(img, -1, line))
    small = cv2.resize(img, (24, 24), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(degrade_crop(img, 0, 0.0, 24, 0.0, 0, rng),
                                  cv2.resize(small, (64, 64), interpolation=cv2.INTER_LINEAR))
    _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 20])
    np.testing.assert_array_equal(degrade_crop(img, 0, 0.0, 0, 0.0, 20, rng), cv2.imdecode(buf, cv2.IMREAD_COLOR))
    # a vertical line blurs columns, not rows: a horizontal stripe pattern is smeared, a vertical one kept
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[::2] = 255
    assert degrade_crop(stripes, 5, 90.0, 0, 0.0, 0, rng)[8:56].std() < 0.3 * stripes.std()
    assert degrade_crop(stripes.transpose(1, 0, 2), 5, 90.0, 0, 0.0, 0, rng)[8:56].std() > 0.9 * stripes.std()


def test_degrade_noise_has_the_asked_strength_and_grey_noise_is_grey():
    flat = np.full((64, 64, 3), 128, np.uint8)
    colour = degrade_crop(flat, 0, 0.0, 0, 10.0, 0, np.random.default_rng(1)).astype(float)
    assert 9.5 < colour.std() < 10.5
    assert np.abs(colour[..., 0] - colour[..., 1]).mean() > 5  # each channel its own grain
    grey = degrade_crop(flat, 0, 0.0, 0, 10.0, 0, np.random.default_rng(1), mono=True)
    assert 9.5 < grey.astype(float).std() < 10.5
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    # one-channel crops (train --channels 1) go through every step and keep their shape
    one = degrade_crop(flat[..., :1], 5, 30.0, 24, 10.0, 20, np.random.default_rng(1))
    assert one.shape == (64, 64, 1) and 2 < one.astype(float).std() < 8  # the grain, smoothed by JPEG and the upscale


def test_camera_defects_real_draws():
    """About the asked fraction is hit; every row has at least one defect, each within its range."""
    d = camera_defects(np.random.default_rng(2), 4000, 0.3)
    hit, length, turn, side, sigma, quality = d.T
    assert abs(hit.mean() - 0.3) < 0.03
    assert ((length > 0) | (side > 0) | (sigma > 0) | (quality > 0)).all()
    for v, lo, hi in ((length, 3, 7), (side, 20, 48), (sigma, 2, 16), (quality, 15, 70)):
        on = v[v > 0]
        assert on.min() >= lo and on.max() <= hi and 0.3 < len(on) / len(v) < 0.6
    assert set(np.unique(length[length > 0])) == {3, 5, 7}
    assert turn.min() >= 0 and turn.max() <= 180


def test_degrade_in_the_batch_keeps_the_labels(crops):
    """Scripted draws (coin 0.3: every crop hit, all four defects; mid-range values, no noise drawn): each crop is
    ``degrade_crop`` of itself with those values, and the labels stay. Real draws: the defects come after every
    other draw, so the crops they miss are exactly those of the same seed without them."""
    img, pose = crops
    out, new = augment_batch(img, pose, ScriptedRng(coin=0.3), flip=False, rotate=0.0, degrade=1.0)
    for i in range(len(img)):
        ref = degrade_crop(img[i], 5, 90.0, 34, 9.0, 42, ScriptedRng())
        np.testing.assert_array_equal(out[i], ref)
    assert np.abs(out.astype(int) - img).mean() > 5
    np.testing.assert_allclose(new, pose, atol=1e-6)
    img, pose = np.tile(img, (8, 1, 1, 1)), np.tile(pose, (8, 1))
    a, pa = augment_batch(img, pose, np.random.default_rng(4), grey=0.2)
    b, pb = augment_batch(img, pose, np.random.default_rng(4), grey=0.2, degrade=0.3)
    same = (a == b).all(axis=(1, 2, 3))
    assert 0.55 < same.mean() < 0.85, same.mean()
    np.testing.assert_allclose(pa, pb, atol=1e-6)


def test_inputs_are_not_modified(crops):
    img, pose = crops
    img0, pose0 = img.copy(), pose.copy()
    for rng in (ScriptedRng(0.9, 0.3), np.random.default_rng(0)):
        out, new = augment_batch(img, pose, rng, grey=0.3, infrared=0.3, erase=0.5, degrade=0.5)
        assert out is not img and new is not pose
    np.testing.assert_array_equal(img, img0)
    np.testing.assert_array_equal(pose, pose0)


def test_augmented_labels_describe_the_augmented_crops(biwi_npz):
    """Real random draws (about half the crops flipped, half turned up to ±30°) on real BIWI crops: the seed
    model reads the new labels from the new pictures, each angle on its own (within 8°: about 5° with the right
    labels, where a flip that kept roll or a turn labelled the wrong way round gives 14-20° of roll)."""
    from headpose.runtime import open_model

    img, pose = load_npz(biwi_npz["val"], mmap=False)
    seed = open_model(SEED_TFLITE)
    before = np.abs(seed(img) - pose).mean(axis=0)
    out, new = augment_batch(img, pose, np.random.default_rng(3), rotate=30.0)
    after = np.abs(seed(out) - new).mean(axis=0)
    moved = np.abs(new - pose).mean(axis=0)
    assert moved[0] > 5 and moved[2] > 8  # the labels did change: flips and turns happened
    assert before.max() < 3 and (after < 8).all(), (before, after)
