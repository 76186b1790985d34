"""Frame alignment for temporal restoration: a neighbouring video frame warped onto a reference frame.

Two motions are handled, one after the other, and applied in a single resampling:
  * the camera's shake, a global translation found by phase correlation (`global_shift`);
  * what moves in the scene (people, cars), a dense optical flow (OpenCV's DIS flow, `local_flow`) computed
    after the global shift has been taken out, so the flow only has to find small local motions.

Why OpenCV's DIS flow: it runs in milliseconds per 240x320 frame pair on one CPU core, is robust to noise (it
matches mean-normalised patches at several scales) and gives the same flow for any number of threads (checked in
tests/test_temporal.py), so a restoration can be repeated bit for bit. Flow is computed on a lightly smoothed,
contrast-stretched grey image (`flow_image`): dark CCTV frames use a few of the 256 grey levels otherwise.

Convention: the flow `f` of a neighbour onto a reference satisfies reference(x) ~ neighbour(x + f(x)).
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

# DIS presets by name (speed/quality trade-off): per 240x320 pair on one core ~1 ms, ~2 ms, ~6 ms.
PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def flow_image(frame: np.ndarray, blur_sigma: float = 1.0) -> np.ndarray:
    """The uint8 grey image flow is computed on: BT.601 luma, smoothed, stretched between its 0.5 and 99.5 %
    quantiles (so a dark frame fills the grey range; noise matters less after the smoothing).

    Args:
      frame: [H, W, 3] float in [0, 1] (or uint8).
      blur_sigma: Gaussian smoothing in pixels before the stretch (0: none).
    """
    rgb = np.asarray(frame, np.float32)
    if np.asarray(frame).dtype == np.uint8:
        rgb = rgb / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    if blur_sigma > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), blur_sigma)
    lo, hi = np.quantile(gray[::2, ::2], [0.005, 0.995])
    scale = 255.0 / max(float(hi - lo), 1e-4)
    return np.clip((gray - lo) * scale + 0.5, 0, 255).astype(np.uint8)


def global_shift(ref: np.ndarray, img: np.ndarray) -> tuple[float, float]:
    """(dx, dy) with ref(x, y) ~ img(x + dx, y + dy): the camera's translation between two grey images,
    by phase correlation with a Hann window (sub-pixel)."""
    a, b = np.float32(ref), np.float32(img)
    window = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, window)
    return float(dx), float(dy)


def _translate(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """img sampled at (x + dx, y + dy), edges replicated."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[1::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


class Aligner:
    """Estimates the motion of neighbouring frames onto a reference (global shift + local DIS flow).

    One instance holds one DIS object (not thread-safe: one Aligner per thread).
    """

    def __init__(self, preset: str = "fast", global_motion: bool = True):
        if preset not in PRESETS:
            raise ValueError(f"unknown flow preset {preset!r}; one of {sorted(PRESETS)}")
        self.preset, self.global_motion = preset, global_motion
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def flow(self, ref: np.ndarray, img: np.ndarray) -> np.ndarray:
        """[H, W, 2] float32 flow (dx, dy) with ref(x) ~ img(x + flow(x)), from two `flow_image`s."""
        dx = dy = 0.0
        moved = img
        if self.global_motion:
            dx, dy = global_shift(ref, img)
            if abs(dx) >= 0.5 or abs(dy) >= 0.5:  # sub-pixel shake: the flow finds it, no extra resampling
                moved = _translate(img, dx, dy)
            else:
                dx = dy = 0.0
        f = self._dis.calc(ref, moved, None)
        # moved(x) = img(x + d), so ref(x) ~ moved(x + f(x)) ~ img(x + f(x) + d).
        f[..., 0] += dx
        f[..., 1] += dy
        return f


def warp(frame: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_CUBIC
         ) -> tuple[np.ndarray, np.ndarray]:
    """Samples `frame` at x + flow(x), bicubic by default: bilinear resampling of a sub-pixel shift smooths the
    detail the model should see (fused and restored footage +0.05 dB with bicubic on the footage benchmark).

    Returns:
      (warped, valid): the warped [H, W, C] frame (float32) and a [H, W] float32 mask, 1 where the sample point lies
      inside the frame and 0 where it fell outside (those pixels hold replicated edges, not the scene).
    """
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    warped = cv2.remap(np.asarray(frame, np.float32), mx, my, interpolation, borderMode=cv2.BORDER_REPLICATE)
    valid = ((mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)).astype(np.float32)
    return warped.reshape(np.shape(frame)), valid


def align(aligner: Aligner, ref_gray: np.ndarray, img_gray: np.ndarray, img: np.ndarray,
          flow: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """`img` (its flow image `img_gray`) warped onto the reference whose flow image is `ref_gray`;
    see `warp` for the result."""
    return warp(img, aligner.flow(ref_gray, img_gray) if flow is None else flow)
