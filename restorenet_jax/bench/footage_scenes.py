"""Synthetic CCTV scenes: a fixed camera on a photo, optional small shake, optional person-sized moving figure.

`make_clip(photo, motion, ...)` returns the clean frames and, per frame, the mask of the moving figure (where a
temporal method that blends frames without following the motion leaves ghosts). Motions:
  static        the same frame T times
  shake         the camera wobbles: a smooth random walk of sub-pixel offsets, at most `max_shake` pixels
  object        a fixed camera; a figure walks across the frame at `object_speed` pixels per frame
  shake_object  both
Photos come from scikit-image's bundled files only (offline). Everything is deterministic for (photo, seed).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image
from scipy import ndimage

MOTIONS = ("static", "shake", "object", "shake_object")
# The figure's texture comes from another photo than the background, so it stands out like a person in a scene.
_TEXTURE_OF = {"chelsea": "coffee", "coffee": "chelsea", "camera": "chelsea"}
_MARGIN = 4  # extra background pixels on each side, so a shaken frame never samples outside the photo


@dataclasses.dataclass(frozen=True)
class Clip:
    """Clean footage: frames uint8 [T, H, W, 3]; mask bool [T, H, W] (the moving figure; all False without one)."""

    name: str
    frames: np.ndarray
    mask: np.ndarray


def load_photo(name: str) -> np.ndarray:
    """A scikit-image bundled photo as float32 RGB [h, w, 3] in [0, 1] (grey photos repeated over 3 channels)."""
    import skimage.data

    if name not in _TEXTURE_OF:
        raise ValueError(f"unknown scene photo {name!r} (known: {', '.join(_TEXTURE_OF)})")
    img = np.asarray(getattr(skimage.data, name)(), np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return img[..., :3]


def _fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resizes (PIL bicubic, keeping the aspect ratio) so img covers [h, w], then crops the centre."""
    scale = max(h / img.shape[0], w / img.shape[1])
    size = (max(w, round(img.shape[1] * scale)), max(h, round(img.shape[0] * scale)))
    pil = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).resize(size, Image.BICUBIC)
    arr = np.asarray(pil, np.float32) / 255.0
    top, left = (arr.shape[0] - h) // 2, (arr.shape[1] - w) // 2
    return arr[top:top + h, left:left + w]


def shake_path(rng: np.random.Generator, frames: int, max_shake: float) -> np.ndarray:
    """[T, 2] (dy, dx) offsets: a smoothed random walk scaled so its largest offset is max_shake pixels."""
    if frames < 2 or max_shake <= 0:
        return np.zeros((frames, 2))
    walk = np.cumsum(rng.normal(size=(frames, 2)), axis=0)
    walk = ndimage.uniform_filter1d(walk, size=3, axis=0, mode="nearest")  # a tripod wobbles, it does not jump
    walk -= walk.mean(axis=0)
    return walk * (max_shake / max(np.abs(walk).max(), 1e-9))


def figure_alpha(h: int, w: int, top: float, left: float, fig_h: float) -> np.ndarray:
    """Coverage [h, w] in [0, 1] of a person-like figure (a head over a rounded body) of height fig_h whose
    bounding box starts at (top, left); antialiased over one pixel, positions sub-pixel."""
    y, x = np.mgrid[:h, :w].astype(np.float64) + 0.5
    fig_w = 0.38 * fig_h
    head_r = 0.12 * fig_h
    cx = left + fig_w / 2
    head = np.hypot(y - (top + head_r), x - cx) - head_r  # signed distances (negative inside)
    body_half = np.array([0.5 * (fig_h - 2.2 * head_r), fig_w / 2])  # a box with rounded corners
    body_centre = np.array([top + 2.2 * head_r + body_half[0], cx])
    corner = 0.3 * fig_w
    dy = np.abs(y - body_centre[0]) - (body_half[0] - corner)
    dx = np.abs(x - body_centre[1]) - (body_half[1] - corner)
    body = np.hypot(np.maximum(dy, 0), np.maximum(dx, 0)) + np.minimum(np.maximum(dy, dx), 0) - corner
    return np.clip(0.5 - np.minimum(head, body), 0.0, 1.0).astype(np.float32)


def _shifted(img: np.ndarray, dy: float, dx: float, h: int, w: int) -> np.ndarray:
    """The [h, w] window of img (which has _MARGIN extra pixels per side) moved by (dy, dx) pixels (bicubic)."""
    y, x = np.mgrid[:h, :w].astype(np.float64)
    coords = [y + _MARGIN - dy, x + _MARGIN - dx]
    return np.stack([ndimage.map_coordinates(img[..., c], coords, order=3, mode="reflect") for c in range(3)], -1)


def make_clip(photo: str, motion: str, height: int, width: int, frames: int, seed: int, max_shake: float = 1.5,
              object_height: float = 0.45, object_speed: float = 6.0) -> Clip:
    """Clean frames of one scene.

    Args:
      photo: background photo name (see load_photo).
      motion: one of MOTIONS.
      height, width, frames: clip size.
      seed: the shake path, the figure's texture crop and its path derive from it.
      max_shake: largest camera offset in pixels.
      object_height: figure height as a fraction of the frame height.
      object_speed: figure speed in pixels per frame (it walks left to right, centred on the frame's middle frame).
    Returns:
      a Clip (frames uint8, as a camera would deliver them; mask = figure coverage >= 0.5).
    """
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r} (known: {', '.join(MOTIONS)})")
    if max_shake > _MARGIN:
        raise ValueError(f"max_shake must be <= {_MARGIN} pixels, got {max_shake}")
    rng = np.random.default_rng([seed, sum(map(ord, photo)), MOTIONS.index(motion)])
    background = _fit(load_photo(photo), height + 2 * _MARGIN, width + 2 * _MARGIN)
    shake = shake_path(rng, frames, max_shake if "shake" in motion else 0.0)
    texture = _fit(load_photo(_TEXTURE_OF[photo]), height, width)
    fig_h = object_height * height
    fig_w = 0.38 * fig_h
    top = rng.uniform(0.35, 0.5) * (height - fig_h)
    start = width / 2 - fig_w / 2 - object_speed * (frames - 1) / 2
    out, masks = [], []
    for t in range(frames):
        frame = _shifted(background, *shake[t], height, width)
        alpha = np.zeros((height, width), np.float32)
        if "object" in motion:
            left = start + object_speed * t
            alpha = figure_alpha(height, width, top + shake[t][0], left + shake[t][1], fig_h)
            # The figure carries its texture with it: texture shifted by the figure's displacement.
            moved = _shifted(np.pad(texture, ((_MARGIN,) * 2, (_MARGIN,) * 2, (0, 0)), mode="reflect"),
                             shake[t][0], left - start + shake[t][1], height, width)
            frame = alpha[..., None] * moved + (1 - alpha[..., None]) * frame
        out.append(frame)
        masks.append(alpha >= 0.5)
    frames_u8 = np.round(np.clip(np.stack(out), 0.0, 1.0) * 255.0).astype(np.uint8)
    return Clip(name=f"{photo}/{motion}", frames=frames_u8, mask=np.stack(masks))
