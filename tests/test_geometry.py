"""Rotation maths (``headpose.geometry``) and the pose cube (``headpose.draw``): known matrices, SciPy's Euler
conversions as an independent oracle, signs seen in the image, and the cube agreeing with the axes.

Image axes: x right, y down, z out of the face. Positive yaw turns the face to the image's left, positive pitch
tilts it up, positive roll swings the chin to the image's left.
"""

from __future__ import annotations

import itertools
import warnings

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from headpose.draw import DRAW_STYLES, axis_endpoints, cube_points, draw_axis, draw_cube, draw_face
from headpose.errors import HeadposeError
from headpose.geometry import (
    biwi_euler_to_matrix,
    biwi_matrix_to_ypr,
    flip_ypr,
    geodesic_deg,
    matrix_to_ypr,
    ortho_pose,
    rotate_in_plane,
    similarity,
    ypr_to_matrix,
)

GRID = np.arange(-180.0, 181.0, 30.0)


def _wrap(a):
    """Angles to (-180, 180]: ±180 and a full turn are the same angle."""
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


def test_known_matrices():
    np.testing.assert_allclose(ypr_to_matrix(0, 0, 0), np.eye(3), atol=1e-15)
    # yaw +90: the face's forward axis (third column) points to the image's left (-x)
    np.testing.assert_allclose(ypr_to_matrix(90, 0, 0), [[0, 0, -1], [0, 1, 0], [1, 0, 0]], atol=1e-12)
    # pitch +90: forward axis up (-y in image axes), the chin (second column) comes towards the camera
    np.testing.assert_allclose(ypr_to_matrix(0, 90, 0), [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    # roll +90: the chin axis points to the image's left, the right-ear axis (first column) down
    np.testing.assert_allclose(ypr_to_matrix(0, 0, 90), [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    r = ypr_to_matrix(25, -40, 70)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_projected_forward_axis_signs():
    fwd = lambda y, p: ypr_to_matrix(y, p, 0)[:2, 2]  # noqa: E731 - image (x, y) of the forward axis
    assert fwd(30, 0)[0] == pytest.approx(-0.5) and abs(fwd(30, 0)[1]) < 1e-12  # yaw + → left
    assert fwd(-30, 0)[0] == pytest.approx(0.5)
    assert fwd(0, 30)[1] == pytest.approx(-0.5) and abs(fwd(0, 30)[0]) < 1e-12  # pitch + → up
    assert fwd(0, -30)[1] == pytest.approx(0.5)


def test_ypr_to_matrix_is_scipys_intrinsic_xyz():
    """R = Rx(pitch)·Ry(−yaw)·Rz(roll) = SciPy's intrinsic "XYZ" of [pitch, −yaw, roll], over the whole grid."""
    ypr = np.array(list(itertools.product(GRID, GRID, GRID)))
    want = Rotation.from_euler("XYZ", np.stack([ypr[:, 1], -ypr[:, 0], ypr[:, 2]], 1), degrees=True).as_matrix()
    got = np.stack([ypr_to_matrix(*a) for a in ypr])
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_matrix_to_ypr_is_scipys_as_euler_including_gimbal_lock():
    ypr = np.array(list(itertools.product(GRID, GRID, GRID)))
    mats = np.stack([ypr_to_matrix(*a) for a in ypr])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy warns at gimbal lock (|yaw| = 90)
        p, a, r = Rotation.from_matrix(mats).as_euler("XYZ", degrees=True).T
    want = np.stack([-a, p, r], 1)
    got = np.stack([matrix_to_ypr(m) for m in mats])
    np.testing.assert_allclose(_wrap(got - want), 0, atol=1e-9)
    # and each answer is the same rotation
    back = np.stack([ypr_to_matrix(*g) for g in got])
    np.testing.assert_allclose(back, mats, atol=1e-12)


def test_gimbal_lock_returns_roll_zero():
    for yaw, pitch, roll in [(90, 10, 20), (90, -30, 40), (-90, 10, 20), (-90, 50, -35)]:
        r = ypr_to_matrix(yaw, pitch, roll)
        got = matrix_to_ypr(r)
        assert got[0] == pytest.approx(yaw) and got[2] == 0.0
        np.testing.assert_allclose(ypr_to_matrix(*got), r, atol=1e-12)
    # only pitch − roll (yaw +90) or pitch + roll (yaw −90) is defined there
    assert matrix_to_ypr(ypr_to_matrix(90, 10, 20))[1] == pytest.approx(-10)
    assert matrix_to_ypr(ypr_to_matrix(-90, 10, 20))[1] == pytest.approx(30)


def test_round_trip_over_grid():
    for yaw, pitch, roll in itertools.product(np.arange(-75.0, 76.0, 15.0), GRID[1:], GRID[1:]):
        np.testing.assert_allclose(matrix_to_ypr(ypr_to_matrix(yaw, pitch, roll)), [yaw, pitch, roll], atol=1e-9)


def test_rotate_in_plane_turns_the_drawn_axes_with_the_image():
    """rotate_in_plane(pose, a) is the pose whose projected head axes are the old ones turned as
    cv2.getRotationMatrix2D turns the image (counter-clockwise for a > 0, y down)."""
    np.testing.assert_allclose(rotate_in_plane([0, 0, 0], 20), [0, 0, -20], atol=1e-12)
    np.testing.assert_allclose(rotate_in_plane([0, 0, 10], -25), [0, 0, 35], atol=1e-12)
    rng = np.random.default_rng(1)
    for pose, a in zip(rng.uniform(-60, 60, (20, 3)), rng.uniform(-45, 45, 20)):
        turn = cv2.getRotationMatrix2D((0.0, 0.0), float(a), 1.0)[:, :2]
        np.testing.assert_allclose(axis_endpoints(*rotate_in_plane(pose, a), (0, 0), 1.0),
                                   axis_endpoints(*pose, (0, 0), 1.0) @ turn.T, atol=1e-12)
    # a face pitched up, the image turned a quarter counter-clockwise: the face now looks to the image's left
    assert rotate_in_plane([0, 30, 0], 90)[0] == pytest.approx(30)


def test_flip_ypr_mirrors_the_drawn_axes():
    np.testing.assert_array_equal(flip_ypr([10, 20, 30]), [-10, 20, -30])
    batch = np.array([[10, 20, 30], [np.nan, 5, np.nan]], np.float32)
    out = flip_ypr(batch)
    assert out.dtype == np.float32 and out is not batch
    np.testing.assert_array_equal(out, [[-10, 20, -30], [np.nan, 5, np.nan]])
    np.testing.assert_array_equal(batch[0], [10, 20, 30])  # input untouched
    with pytest.raises(ValueError):
        flip_ypr([1, 2])
    # the mirror of the drawn y (chin) and z (forward) axes: x negated, y kept
    rng = np.random.default_rng(2)
    for pose in rng.uniform(-80, 80, (20, 3)):
        ends = axis_endpoints(*pose, (0, 0), 1.0)
        np.testing.assert_allclose(axis_endpoints(*flip_ypr(pose), (0, 0), 1.0)[1:], ends[1:] * [-1, 1], atol=1e-12)


def test_biwi_conversions():
    """BIWI's Euler order is SciPy's intrinsic "ZYX" of [roll, yaw, pitch]; its matrix is the image frame
    turned 180° about z."""
    d = np.diag([-1.0, -1.0, 1.0])
    rng = np.random.default_rng(3)
    for pitch, yaw, roll in rng.uniform(-70, 70, (30, 3)):
        m = biwi_euler_to_matrix(pitch, yaw, roll)
        np.testing.assert_allclose(m, Rotation.from_euler("ZYX", [roll, yaw, pitch], degrees=True).as_matrix(),
                                   atol=1e-12)
        got = biwi_matrix_to_ypr(m)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, matrix_to_ypr(d @ m @ d), atol=1e-4)


def test_geodesic_and_fits():
    assert geodesic_deg(ypr_to_matrix(30, 0, 0), np.eye(3)) == pytest.approx(30)
    assert geodesic_deg(ypr_to_matrix(0, 0, -50), ypr_to_matrix(0, 0, 10)) == pytest.approx(60)
    rng = np.random.default_rng(4)
    pts = rng.normal(size=(30, 3))
    r = ypr_to_matrix(35, -20, 15)
    s, r_fit, t = similarity(pts, 2.5 * pts @ r.T + [1.0, -2.0, 3.0])
    assert s == pytest.approx(2.5) and geodesic_deg(r_fit, r) < 1e-6
    np.testing.assert_allclose(t, [1.0, -2.0, 3.0], atol=1e-9)
    s, r_fit, t = ortho_pose(pts, 3.0 * (pts @ r.T)[:, :2] + [5.0, 7.0])
    assert s == pytest.approx(3.0) and geodesic_deg(r_fit, r) < 1e-6
    np.testing.assert_allclose(matrix_to_ypr(r_fit), [35, -20, 15], atol=1e-6)


# --- the pose cube -------------------------------------------------------------------------------------------


def _faces(pts):
    return pts[:4].mean(0), pts[4:].mean(0)  # back, front centres


def test_frontal_cube_is_a_square():
    pts = cube_points(0, 0, 0, (100, 80), 40)
    np.testing.assert_allclose(pts[:4], [[80, 60], [120, 60], [120, 100], [80, 100]], atol=1e-12)
    np.testing.assert_allclose(pts[4:], pts[:4], atol=1e-12)  # the front face hides the back one


def test_cube_turns_with_yaw_and_pitch_like_the_z_axis():
    c = np.array([100.0, 100.0])
    back, front = _faces(cube_points(30, 0, 0, c, 40))
    np.testing.assert_allclose(back, c, atol=1e-12)
    assert front[0] < back[0] - 15 and abs(front[1] - back[1]) < 1e-9  # yaw +30: front face to the left
    back, front = _faces(cube_points(0, 30, 0, c, 40))
    assert front[1] < back[1] - 15 and abs(front[0] - back[0]) < 1e-9  # pitch +30: front face up
    rng = np.random.default_rng(5)
    for pose in rng.uniform(-90, 90, (20, 3)):
        pts = cube_points(*pose, c, 40)
        x_end, y_end, z_end = axis_endpoints(*pose, c, 40)
        np.testing.assert_allclose(_faces(pts)[1], z_end, atol=1e-9)  # front centre = end of the z axis
        # the cube's edges are the drawn axes (test_detect checks those against Hopenet's closed form)
        edges = np.array([pts[1] - pts[0], pts[3] - pts[0], pts[4] - pts[0]])
        np.testing.assert_allclose(edges, [x_end - c, y_end - c, z_end - c], atol=1e-9)


def _colour_centre(img, bgr):
    ys, xs = np.nonzero(np.all(img == bgr, axis=2))
    assert len(xs) > 10, f"no {bgr} pixels"
    return xs.mean(), ys.mean()


def test_draw_cube_colours_and_sides():
    img = np.zeros((200, 200, 3), np.uint8)
    out = draw_cube(img, 30, 0, 0, center=(100, 100), size=60, thickness=2)
    assert out is img
    red, green = _colour_centre(img, (0, 0, 255)), _colour_centre(img, (0, 255, 0))
    assert green[0] < red[0] - 15  # front face (green) left of the back face (red) at yaw +30
    _colour_centre(img, (255, 0, 0))  # depth edges drawn (blue)
    img = np.zeros((200, 200, 3), np.uint8)
    draw_cube(img, 0, 30, 0, center=(100, 100), size=60, thickness=2)
    assert _colour_centre(img, (0, 255, 0))[1] < _colour_centre(img, (0, 0, 255))[1] - 15  # pitch +30: front up


def test_draw_face_styles_and_track():
    box = (60, 60, 140, 140)
    axis = draw_face(np.zeros((200, 200, 3), np.uint8), box, 0, 0, 0)
    np.testing.assert_array_equal(axis, draw_face(np.zeros((200, 200, 3), np.uint8), box, 0, 0, 0, style="axis"))
    cube = draw_face(np.zeros((200, 200, 3), np.uint8), box, 0, 0, 0, style="cube")
    # frontal: the axis drawing has red x / green y from the centre and no green square; the cube shows a green
    # square of side 40 around the centre (the front face hides the back) and no red
    assert tuple(cube[80, 100]) == (0, 255, 0) and tuple(cube[100, 80]) == (0, 255, 0)
    assert not np.all(cube == (0, 0, 255), axis=2).any()
    assert tuple(axis[80, 100]) == (0, 0, 0) and tuple(axis[100, 120]) == (0, 0, 255)
    assert tuple(cube[100, 120]) == (0, 255, 0)  # the cube's right edge, where the axis drawing's red x runs
    assert tuple(cube[110, 110]) == (0, 0, 0)  # inside the cube's square: nothing
    assert tuple(axis[110, 100]) == (0, 255, 0)  # the axis drawing's green y axis runs down through it

    plain = draw_face(np.zeros((200, 400, 3), np.uint8), box, 0, 0, 0, color=(255, 255, 255))
    tracked = draw_face(np.zeros((200, 400, 3), np.uint8), box, 0, 0, 0, color=(255, 255, 255), track=7)
    text_cols = lambda img: np.flatnonzero(np.all(img[:56] == 255, axis=2).any(0))  # noqa: E731 - label row
    assert text_cols(tracked).max() > text_cols(plain).max()  # "#7  " makes the label longer
    assert tracked[62:].tobytes() == plain[62:].tobytes()  # the drawing itself is the same


def test_unknown_style_raises_and_draws_nothing():
    img = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(HeadposeError, match="axis.*cube"):
        draw_face(img, (20, 20, 80, 80), 0, 0, 0, style="mesh")
    assert not img.any()
    assert DRAW_STYLES == ("axis", "cube")


def test_draw_axis_defaults_unchanged():
    img = np.zeros((200, 300, 3), np.uint8)
    draw_axis(img, 0, 0, 0)  # centre (150, 100), size 50, thickness 2
    assert tuple(img[100, 195]) == (0, 0, 255) and tuple(img[145, 150]) == (0, 255, 0)
    assert img[100, 205].max() == 0 and img[155, 150].max() == 0
