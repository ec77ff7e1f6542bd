"""Training-time augmentation of uint8 BGR crops, in NumPy/OpenCV, one batch at a time.

The original project's random crop-and-shift with black or white fill and random zoom 0.8-1.2, plus brightness,
contrast, blur, a horizontal flip that negates yaw and roll (pitch is unchanged by a mirror), and an in-plane
rotation whose label change is exact: the head turns about the camera axis (``geometry.rotate_in_plane``).
Faces with an unknown angle (NaN) are not rotated: the turn would mix the unknown angle into the known ones.

Camera looks, for models that must read grey and near-infrared cameras (driver monitoring) as they read colour:
``grey`` turns a fraction of the crops into luminance in all three channels; ``infrared`` a fraction into an
NIR-like grey (skin is bright and flat in near infrared, close to the red channel): the red channel with a random
gamma and a lower contrast.

Occlusion, for faces half hidden by hands, hair, glasses, masks or the frame edge, as photos in the wild are:
``erase`` blanks a fraction of the crops over one random rectangle (random erasing, Zhong et al. 2020: 2-20% of
the crop, aspect 1:3 to 3:1, one random colour); the labels are unchanged.

Camera degradations, for small faces in wide frames, compressed video and dim cabins: ``degrade`` gives a fraction
of the crops each of four defects with odds 0.4 (at least one): motion blur (a 3-7 px line at any angle), low
resolution (the face sampled at 20-48 px, then scaled back), sensor noise (σ 2-16 grey levels, at the sampled
resolution, one value for the three channels of a grey or NIR-like crop) and JPEG compression (quality 15-70), in
that order, as a camera makes them (:func:`degrade_crop`). Session 19 measured the shipped models on such crops
(``scripts/robustness.py``): noise of σ 10 cost them 1.2-4.4° before this.
"""

from __future__ import annotations

import cv2
import numpy as np

from headpose.geometry import flip_ypr, rotate_in_plane


def augment_batch(images: np.ndarray, poses: np.ndarray, rng: np.random.Generator,
                  flip: bool = True, rotate: float = 30.0, grey: float = 0.0,
                  infrared: float = 0.0, erase: float = 0.0, degrade: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Augmented copies of a batch (uint8 N×S×S×C, float N×3); the inputs are not modified. With ``degrade`` 0
    the random draws are those of the releases before it (a seeded run makes the same batches)."""
    n, s = images.shape[0], images.shape[1]
    out = np.empty_like(images)
    poses = np.array(poses, dtype=np.float32, copy=True)
    zoom = rng.uniform(0.8, 1.2, n)
    shift = rng.uniform(-0.1, 0.1, (n, 2)) * s
    fill = np.where(rng.random(n) < 0.5, 0, 255)
    alpha = rng.uniform(0.7, 1.3, n)  # contrast
    beta = rng.uniform(-30, 30, n)  # brightness
    blur = rng.random(n) < 0.15
    do_flip = (rng.random(n) < 0.5) if flip else np.zeros(n, bool)
    angle = np.where(rng.random(n) < 0.5, rng.uniform(-rotate, rotate, n), 0.0)
    angle[np.isnan(poses).any(axis=1)] = 0.0
    look = rng.random(n)  # < grey: grey; < grey + infrared: NIR-like; else colour
    gamma = rng.uniform(0.6, 1.2, n)
    boxes, colour = erase_boxes(rng, n, s, erase)
    defects = camera_defects(rng, n, degrade) if degrade else None
    c = (s - 1) / 2.0
    for i in range(n):
        m = cv2.getRotationMatrix2D((c, c), float(angle[i]), float(zoom[i]))
        m[:, 2] += shift[i]
        if angle[i]:
            poses[i] = rotate_in_plane(poses[i], float(angle[i]))
        img = cv2.warpAffine(images[i], m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=(int(fill[i]),) * 3)
        if img.ndim == 2:
            img = img[..., None]
        if boxes[i, 2]:
            y, x, h, w = boxes[i]
            img[y:y + h, x:x + w] = colour[i, :img.shape[-1]]
        if img.shape[-1] == 3 and look[i] < grey + infrared:
            img = as_grey(img) if look[i] < grey else infrared_like(img, float(gamma[i]))
        if defects is not None and defects[i, 0]:
            _, length, turn, side, sigma, quality = defects[i]
            img = degrade_crop(img, int(length), float(turn), int(side), float(sigma), int(quality), rng,
                               mono=bool(look[i] < grey + infrared))
        if blur[i]:
            img = cv2.GaussianBlur(img, (3, 3), 0).reshape(img.shape)
        if do_flip[i]:
            img = img[:, ::-1]
        out[i] = cv2.convertScaleAbs(img, alpha=alpha[i], beta=beta[i]).reshape(img.shape)
    poses[do_flip] = flip_ypr(poses[do_flip])
    return out, poses


def erase_boxes(rng, n: int, s: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Random-erasing rectangles for ``n`` crops of ``s``×``s``: int rows (top, left, height, width), height 0
    where a crop keeps all its pixels (1 − ``fraction`` of them), and a float colour (N×3) for each."""
    hit = rng.random(n) < fraction
    area = rng.uniform(0.02, 0.2, n) * s * s
    aspect = np.exp(rng.uniform(np.log(1 / 3), np.log(3), n))
    h = np.clip(np.rint(np.sqrt(area * aspect)), 1, s).astype(int)
    w = np.clip(np.rint(np.sqrt(area / aspect)), 1, s).astype(int)
    top = np.minimum((rng.uniform(0, 1, n) * (s - h + 1)).astype(int), s - h)
    left = np.minimum((rng.uniform(0, 1, n) * (s - w + 1)).astype(int), s - w)
    colour = rng.uniform(0, 255, (n, 3))
    return np.stack([top, left, np.where(hit, h, 0), w], axis=1), colour


def camera_defects(rng, n: int, fraction: float) -> np.ndarray:
    """Each crop's camera defects (:func:`degrade_crop`'s arguments), rows of (hit, motion length, motion angle,
    sampled side, noise σ, JPEG quality): a fraction of the crops is hit; each defect of a hit crop is drawn with
    odds 0.4, one at random where none was; 0 turns a defect off (length, σ, quality; side: the crop's own)."""
    hit = rng.random(n) < fraction
    on = rng.random((n, 4)) < 0.4
    pick = np.minimum((rng.uniform(0, 4, n)).astype(int), 3)
    none = ~on.any(axis=1)
    on[none, pick[none]] = True
    length = 2 * np.rint(rng.uniform(1, 3, n)) + 1  # 3, 5 or 7 px
    turn = rng.uniform(0, 180, n)
    side = np.rint(rng.uniform(20, 48, n))
    sigma = rng.uniform(2, 16, n)
    quality = np.rint(rng.uniform(15, 70, n))
    return np.stack([hit, on[:, 0] * length, turn, on[:, 1] * side, on[:, 2] * sigma, on[:, 3] * quality], axis=1)


def degrade_crop(img: np.ndarray, length: int, turn: float, side: int, sigma: float, quality: int, rng,
                 mono: bool = False) -> np.ndarray:
    """A crop as a worse camera would give it: motion blur along a ``length``-px line at ``turn`` degrees, then
    sampled at ``side``×``side`` px, Gaussian noise of ``sigma`` grey levels (``mono``: the same in every
    channel), JPEG at ``quality``, and scaled back to the crop's size. 0 skips a step. ``img``: S×S×C uint8, C 1
    or 3 (the layout of the training crops)."""
    s = img.shape[0]
    out = img
    if length > 1:
        k = np.zeros((length, length), np.float32)
        k[length // 2] = 1.0
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), turn, 1.0)
        k = cv2.warpAffine(k, rot, (length, length))
        out = cv2.filter2D(out, -1, k / max(float(k.sum()), 1e-6)).reshape(out.shape)
    if side and side < s:
        out = cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA).reshape((side, side) + img.shape[2:])
    if sigma > 0:
        grain = rng.normal(0.0, sigma, out.shape[:2] + (1,) if mono else out.shape).astype(np.float32)
        out = (np.clip(out.astype(np.float32) + grain, 0, 255) + 0.5).astype(np.uint8)
    if quality:
        _, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        grey = out.shape[-1] == 1
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR).reshape(out.shape)
    if out.shape[0] != s:
        out = cv2.resize(out, (s, s), interpolation=cv2.INTER_LINEAR).reshape(img.shape)
    return out.reshape(img.shape)


def as_grey(img: np.ndarray) -> np.ndarray:
    """A BGR crop as a grey picture in three channels (what a grey camera gives after BGR conversion)."""
    return np.repeat(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None], 3, axis=2)


def infrared_like(img: np.ndarray, gamma: float) -> np.ndarray:
    """A BGR crop as a near-infrared-like grey picture: the red channel, gamma-curved, contrast flattened
    towards its mean (three equal channels)."""
    red = img[..., 2].astype(np.float32) / 255.0
    red = red**gamma
    red = 0.75 * red + 0.25 * float(red.mean())
    return np.repeat(np.clip(red * 255.0 + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
