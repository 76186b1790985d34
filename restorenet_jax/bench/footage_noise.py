"""Noisy footage for the benchmark: one setting per noise family of the project, and one the training never sees.

A real camera keeps its colour matrix, gains and exposure over a clip while the noise changes every frame, so each
family draws its per-camera numbers once per clip and fresh noise per frame. Families:
  low_light   dark scene with the camera's gain (data/camera_pipeline.py): shot + read noise in linear space
              at a fixed exposure and shot level (read noise from the shot level by the Brooks et al. fit)
  cctv        the 'cctv' degradation (data/cctv.py) with its default per-clip draws
  gaussian    i.i.d. Gaussian noise of a fixed sigma
  poisson     photon noise at a fixed peak count
  dark_h264   full-resolution RGGB mosaic shot + read noise in the dark with gain, bilinear demosaic (correlated,
              coloured), then real H.264 (libx264, 4:2:0, inter frames) at a CRF: no training config makes it
Output frames are uint8, as a video stream delivers them.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from restorenet_jax.bench import ffmpeg_pipe
from restorenet_jax.configs.degradations import get_noise_config
from restorenet_jax.data import cctv
from restorenet_jax.data.camera_pipeline import (add_read_shot_noise, process, sample_camera_params,
                                                 unprocess)

FAMILIES = ("low_light", "cctv", "gaussian", "poisson", "dark_h264")


def _read_from_shot(shot: float, ll: Any) -> float:
    """Read-noise variance of a sensor with this shot level: the mean of the Brooks et al. fit (no jitter)."""
    return float(np.exp(ll.read_noise_slope * np.log(shot) + ll.read_noise_intercept))


def _to_float(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32) / 255.0


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


def degrade_clip(frames: np.ndarray, setting: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Noisy version of clean uint8 frames [T, H, W, 3] under one setting (a dict with 'family' and its numbers).

    Args:
      frames: clean uint8 [T, H, W, 3].
      setting: {'family': one of FAMILIES, ...}: exposure/shot (low_light, dark_h264), crf (dark_h264),
        sigma (gaussian), peak (poisson); cctv takes its numbers from configs/degradations.py.
      rng: per-clip numbers first, then the noise frame by frame.
    Returns:
      uint8 [T, H, W, 3].
    """
    family = setting["family"]
    noise_cfg = get_noise_config()
    ll = noise_cfg.low_light
    clean = _to_float(frames)
    if family in ("low_light", "dark_h264"):
        camera = sample_camera_params(rng, ll)
        exposure, shot = float(setting["exposure"]), float(setting["shot"])
        read = _read_from_shot(shot, ll)
        out = []
        for frame in clean:
            if family == "low_light":
                linear = unprocess(frame, camera, ll.preserve_highlights) * np.float32(exposure)
                noisy = process(add_read_shot_noise(linear, rng, shot, read) / np.float32(exposure), camera,
                                ll.preserve_highlights)
            else:  # one unit normal per photosite of the RGGB mosaic, demosaiced: correlated, coloured noise
                normal = rng.standard_normal(frame.shape[:2], dtype=np.float32)
                noisy = cctv.sensor_noise(frame, camera, exposure, shot, read, normal, ll)
            out.append(noisy)
        noisy = _to_uint8(np.stack(out))
        return ffmpeg_pipe.h264_round_trip(noisy, int(setting["crf"])) if family == "dark_h264" else noisy
    if family == "cctv":
        params = cctv.sample_params(rng, noise_cfg)
        return _to_uint8(np.stack([cctv.apply(f, params, cctv.draw_noise(rng, f.shape[:2]), ll) for f in clean]))
    if family == "gaussian":
        return _to_uint8(clean + np.float32(setting["sigma"]) * rng.standard_normal(clean.shape, dtype=np.float32))
    if family == "poisson":
        peak = float(setting["peak"])
        return _to_uint8(rng.poisson(clean * peak) / peak)
    raise ValueError(f"unknown noise family {family!r} (known: {', '.join(FAMILIES)})")
