"""A synthetic dark CCTV clip with known truth: a static textured scene, camera shake, a moving object, and
sensor noise that changes from frame to frame (Poisson-Gaussian, as a dark sensor gives).

Used by the temporal restoration tests and its cost/quality measurement (`bench/temporal_cost.py`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Clip:
    """clean / noisy: [N, H, W, 3] float32 in [0, 1]; moving: [N, H, W] bool, the moving object's pixels;
    shifts: [N, 2] the camera's (dx, dy) per frame (scene point x of frame 0 is at x - shift in frame t)."""

    clean: np.ndarray
    noisy: np.ndarray
    moving: np.ndarray
    shifts: np.ndarray


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A textured colour scene [h, w, 3] in [0, 1]: smooth blobs, sharp-edged rectangles and fine texture."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.random((h // 8 + 1, w // 8 + 1, 3)).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    for _ in range(max(4, h * w // 2000)):
        y, x = rng.integers(0, h), rng.integers(0, w)
        cv2.rectangle(img, (int(x), int(y)), (int(x + rng.integers(4, 30)), int(y + rng.integers(4, 30))),
                      rng.random(3).tolist(), -1)
    img += 0.15 * cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), 0.8)
    return np.clip(img, 0, 1)


def dark_clip(n: int = 9, h: int = 40, w: int = 56, seed: int = 0, brightness: float = 0.25, shake: float = 2.0,
              speed: float = 3.0, photons: float = 400.0, read_noise: float = 0.01) -> Clip:
    """A dark clip of n frames.

    Args:
      brightness: the scene's mean level (dark footage: ~0.1-0.3).
      shake: std of the camera's per-frame translation in pixels (sub-pixel parts included).
      speed: the moving object's speed in pixels per frame (to the right).
      photons: photo-electrons at full scale (shot noise std at level v: sqrt(v / photons)).
      read_noise: Gaussian noise std, [0, 1] scale.
    """
    rng = np.random.default_rng(seed)
    pad = int(4 * shake) + 4
    big = scene(h + 2 * pad, w + 2 * pad, seed) * (2 * brightness)
    obj_h, obj_w = max(6, h // 4), max(8, w // 4)
    obj = np.clip(scene(obj_h, obj_w, seed + 1) * 0.5 + 0.5, 0, 1) * min(1.0, 3 * brightness)
    shifts = np.zeros((n, 2), np.float32)
    clean, moving = [], []
    for t in range(n):
        if t:
            shifts[t] = rng.normal(0, shake, 2)
        m = np.float32([[1, 0, pad + shifts[t, 0]], [0, 1, pad + shifts[t, 1]]])
        frame = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        x0, y0 = int(round(w * 0.1 + speed * t)) % max(1, w - obj_w), (h - obj_h) // 2
        mask = np.zeros((h, w), bool)
        mask[y0:y0 + obj_h, x0:x0 + obj_w] = True
        frame[mask] = obj.reshape(-1, 3)
        clean.append(frame)
        moving.append(mask)
    clean = np.clip(np.stack(clean), 0, 1).astype(np.float32)
    noisy = rng.poisson(clean * photons) / photons + rng.normal(0, read_noise, clean.shape)
    return Clip(clean, np.clip(noisy, 0, 1).astype(np.float32), np.stack(moving), shifts)
