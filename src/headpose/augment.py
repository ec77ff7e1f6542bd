"""Training-time augmentation of uint8 BGR crops, in NumPy/OpenCV, one batch at a time.

The original project's random crop-and-shift with black or white fill and random zoom 0.8-1.2, plus brightness,
contrast, blur and a horizontal flip that negates yaw and roll (pitch is unchanged by a mirror).
"""

from __future__ import annotations

import cv2
import numpy as np


def augment_batch(images: np.ndarray, poses: np.ndarray, rng: np.random.Generator,
                  flip: bool = True) -> tuple[np.ndarray, np.ndarray]:
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
    c = (s - 1) / 2.0
    for i in range(n):
        m = np.array([[zoom[i], 0, (1 - zoom[i]) * c + shift[i, 0]],
                      [0, zoom[i], (1 - zoom[i]) * c + shift[i, 1]]], np.float32)
        img = cv2.warpAffine(images[i], m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=(int(fill[i]),) * 3)
        if img.ndim == 2:
            img = img[..., None]
        if blur[i]:
            img = cv2.GaussianBlur(img, (3, 3), 0).reshape(img.shape)
        if do_flip[i]:
            img = img[:, ::-1]
        out[i] = cv2.convertScaleAbs(img, alpha=alpha[i], beta=beta[i]).reshape(img.shape)
    poses[do_flip, 0] *= -1  # yaw
    poses[do_flip, 2] *= -1  # roll
    return out, poses
