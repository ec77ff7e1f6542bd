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
"""

from __future__ import annotations

import cv2
import numpy as np

from headpose.geometry import flip_ypr, rotate_in_plane


def augment_batch(images: np.ndarray, poses: np.ndarray, rng: np.random.Generator,
                  flip: bool = True, rotate: float = 30.0, grey: float = 0.0,
                  infrared: float = 0.0, erase: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Augmented copies of a batch (uint8 N×S×S×C, float N×3); the inputs are not modified."""
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
