"""The one resize rule (:func:`headpose.detect.resize_square`) and the network input (``prepare_input``), on real
BIWI crops and frames: the same pixels as OpenCV with the rule written out, lists of crops of any size, grey crops."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from conftest import DATA

from headpose.detect import resize_square
from headpose.errors import HeadposeError
from headpose.runtime import prepare_input

CROPS = DATA / "biwi_crops"
# Real crops as they lie in the shared data: 109×109, 125×125, and one 124 wide × 125 high.
SQUARE = ("01/frame_00004_rgb.jpg", "07/frame_00695_rgb.jpg", "02/frame_00370_rgb.jpg")
NON_SQUARE = "14/frame_00601_rgb.jpg"


def read(name: str) -> np.ndarray:
    im = cv2.imread(str(CROPS / name))
    assert im is not None, name
    return im


def rule(image: np.ndarray, size: int) -> np.ndarray:
    """The rule written out with OpenCV: area when shrinking, bilinear when enlarging."""
    interp = cv2.INTER_AREA if max(image.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


@pytest.mark.parametrize("size", [32, 64, 109, 128, 200])
def test_resize_square_is_the_rule_on_real_crops(size):
    for name in (*SQUARE, NON_SQUARE):
        im = read(name)
        out = resize_square(im, size)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, rule(im, size))
    assert read(NON_SQUARE).shape == (125, 124, 3)  # a non-square crop is stretched (the data readers rely on it)


def test_resize_square_keeps_the_channels_given():
    im = read(SQUARE[1])
    grey = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
    for size in (64, 200):
        assert resize_square(grey, size).shape == (size, size)
        assert resize_square(grey[..., None], size).shape == (size, size, 1)
        np.testing.assert_array_equal(resize_square(grey[..., None], size)[..., 0], rule(grey, size))
        np.testing.assert_array_equal(resize_square(grey, size), rule(grey, size))
        # Channels are resized independently: a colour crop's channel is that channel resized alone.
        np.testing.assert_array_equal(resize_square(im, size)[..., 1], rule(np.ascontiguousarray(im[..., 1]), size))
    f32 = resize_square(im.astype(np.float32), 48)
    assert f32.dtype == np.float32 and f32.shape == (48, 48, 3)


def test_prepare_input_list_of_sizes_is_each_alone():
    crops = [read(n) for n in SQUARE]
    crops.append(cv2.resize(crops[0], (40, 40), interpolation=cv2.INTER_AREA))  # a small one: enlarged
    assert len({c.shape for c in crops}) == 3
    for channels in (3, 1):
        both = prepare_input(crops, channels, 64)
        assert both.shape == (4, 64, 64, channels) and both.dtype == np.float32
        alone = np.concatenate([prepare_input(c, channels, 64) for c in crops])
        np.testing.assert_array_equal(both, alone)
        np.testing.assert_array_equal(prepare_input(tuple(crops), channels, 64), alone)
    np.testing.assert_array_equal(prepare_input(crops, 3, 64)[0], rule(crops[0], 64).astype(np.float32))
    # An array of crops is resized by the same rule.
    same = np.stack([crops[0], crops[2]])
    np.testing.assert_array_equal(prepare_input(same, 3, 64), prepare_input([crops[0], crops[2]], 3, 64))
    # Without a size, crops of one size are taken as they are; of several sizes, that is an error.
    np.testing.assert_array_equal(prepare_input([crops[0]], 3), crops[0][None].astype(np.float32))
    with pytest.raises(HeadposeError, match="different sizes"):
        prepare_input(crops, 3)


def test_prepare_input_grey_crops():
    colour = [read(n) for n in SQUARE[:2]]
    grey = [cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in colour]
    as_bgr = [cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in grey]
    for g in (grey, [g[..., None] for g in grey]):
        # 3-channel model: the grey repeated in B, G and R, as if given as a BGR image of grey.
        np.testing.assert_array_equal(prepare_input(g, 3, 64), prepare_input(as_bgr, 3, 64))
        # 1-channel model: kept as it is.
        out = prepare_input(g, 1, 64)
        assert out.shape == (2, 64, 64, 1)
        np.testing.assert_array_equal(out[..., 0], np.stack([rule(x, 64) for x in grey]).astype(np.float32))
    # Arrays of grey crops: N×S×S and N×S×S×1, and one S×S crop.
    batch = np.stack([rule(g, 64) for g in grey])
    for x in (batch, batch[..., None]):
        np.testing.assert_array_equal(prepare_input(x, 3, 64), prepare_input(as_bgr, 3, 64))
        np.testing.assert_array_equal(prepare_input(x, 1, 64)[..., 0], batch.astype(np.float32))
    np.testing.assert_array_equal(prepare_input(grey[0], 3, 64), prepare_input(as_bgr[0], 3, 64))
    # A grey crop among colour ones.
    np.testing.assert_array_equal(prepare_input([colour[0], grey[1]], 3, 64), prepare_input([colour[0], as_bgr[1]],
                                                                                            3, 64))


def test_prepare_input_errors_and_empty():
    crops = [read(n) for n in SQUARE[:2]] + [read(NON_SQUARE)[:100]]
    with pytest.raises(HeadposeError, match=r"crop 2 is 124×100: crops must be square; crop faces with "
                                            r"headpose\.detect\.crop_face"):
        prepare_input(crops, 3, 64)
    with pytest.raises(HeadposeError, match="crop 0 is 124×100"):
        prepare_input(read(NON_SQUARE)[:100], 3, 64)
    # a pixel off square (8% of BIWI's crops) is read, stretched by the one rule as the readers do
    np.testing.assert_array_equal(prepare_input([read(NON_SQUARE)], 3, 64)[0],
                                  resize_square(read(NON_SQUARE), 64).astype(np.float32))
    off = resize_square(read(NON_SQUARE), 64)[:, :63]  # 63 wide, as high as the model's input
    for given in ([off], off, off[None]):
        np.testing.assert_array_equal(prepare_input(given, 3, 64)[0], resize_square(off, 64).astype(np.float32))
    with pytest.raises(HeadposeError, match="crop 1 has shape"):
        prepare_input([crops[0], np.zeros((64, 64, 4), np.uint8)], 3, 64)
    for channels in (3, 1):
        empty = prepare_input([], channels, 64)
        assert empty.shape == (0, 64, 64, channels) and empty.dtype == np.float32


# --- padding beyond the image (detect.crop_padded) -----------------------------------------------------------

@pytest.mark.parametrize("box", [(-20, -7, 130, 118), (-300, 5, 60, 400)])  # a margin, and pads wider than the crop
def test_crop_padded_fills(box):
    """Black pads with zeros; "reflect" mirrors the image at its edges (NumPy's reflect, repeated where the pad is
    wider than the image); "blur" keeps the image, defocuses the mirror with no black and no hard seam."""
    from headpose.detect import BLUR_SIGMA, crop_padded

    im = read(SQUARE[0])  # 109×109 real crop
    h, w = im.shape[:2]
    x0, y0, x1, y1 = box
    pads = ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)), (0, 0))
    inside = im[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    black = crop_padded(im, box)
    assert black.shape == (y1 - y0, x1 - x0, 3)
    np.testing.assert_array_equal(black, np.pad(inside, pads))
    reflect = crop_padded(im, box, "reflect")
    np.testing.assert_array_equal(reflect, np.pad(inside, pads, mode="reflect"))
    blur = crop_padded(im, box, "blur")
    assert blur.shape == black.shape and blur.dtype == np.uint8
    top, left = pads[0][0], pads[1][0]
    # the image itself, up to a soft seam reaching about one blur width (BLUR_SIGMA of the side) inside
    m = math.ceil(BLUR_SIGMA * max(blur.shape[:2]))
    core = blur[top + m:top + inside.shape[0] - m, left + m:left + inside.shape[1] - m]
    if core.size:
        np.testing.assert_allclose(core.astype(int), inside[m:-m, m:-m].astype(int), atol=6)
        assert np.abs(core.astype(int) - inside[m:-m, m:-m]).mean() < 1.0
    outside = np.ones(blur.shape[:2], bool)
    outside[top:top + inside.shape[0], left:left + inside.shape[1]] = False
    assert blur[outside].mean() > 0.5 * inside.mean()  # no black frame
    # defocused: far less fine detail than the plain mirror in the padded part
    detail = [np.abs(np.diff(a.astype(int), axis=1))[outside[:, 1:]].mean() for a in (blur, reflect)]
    assert detail[0] < 0.5 * detail[1], detail
    with pytest.raises(HeadposeError, match="fill 'grey'"):
        crop_padded(im, box, "grey")
    assert crop_padded(im, (w + 5, 0, w + 50, 40), "blur") is None
    # a single-channel image (H×W×1) keeps its channel axis, and each fill pads it as it pads a colour channel
    for fill, colour in (("black", black), ("reflect", reflect), ("blur", blur)):
        one = crop_padded(im[..., 1:2], box, fill)
        assert one.shape == (y1 - y0, x1 - x0, 1), (fill, one.shape)
        np.testing.assert_allclose(one[..., 0].astype(int), colour[..., 1].astype(int), atol=1)
