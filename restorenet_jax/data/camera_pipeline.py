"""Invertible camera pipeline of Brooks et al. 2019, "Unprocessing Images for Learned Raw Denoising".

sRGB [0, 1] --unprocess--> linear camera RGB --(noise)--> --process--> sRGB [0, 1].

`unprocess` = inverse tone curve, gamma expansion (2.2), RGB->camera CCM, inverse white balance / brightness.
`process` is its exact inverse (up to float rounding) and clips only at the very end, so that
`process(unprocess(x)) == x` on any image; the noise is added in between in linear space, where the
heteroscedastic shot + read model of the paper holds.

Differences from the paper, on purpose:
- no Bayer mosaic / demosaic: noise is drawn per pixel and colour channel (we synthesise sRGB training pairs,
  not raw inputs);
- `process` also undoes the overall brightness gain and inverts the highlight-preserving gains exactly, so the
  clean round trip returns the input (the paper's network learned to brighten; our pairs must stay aligned).

Constants of the published method (tone curve, gamma, XYZ->camera matrices, sRGB->XYZ) live here; every
random range comes from the config (configs/degradations.py).
"""
from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

# Camera XYZ->camera-RGB matrices used by Brooks et al. (google-research/unprocessing, random_ccm).
XYZ2CAMS = np.array(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
    ],
    dtype=np.float64,
)
# Linear sRGB (D65) -> CIE XYZ.
RGB2XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    dtype=np.float64,
)
GAMMA = 2.2
# Gray level (linear) above which the inverse white balance fades to 1 so whites stay saturated (paper: 0.9).
HIGHLIGHT_INFLECTION = 0.9
_EPS = 1e-8  # the paper's floor before fractional powers
_BISECTION_STEPS = 40  # halves a <1-wide bracket to < 1e-12


@dataclasses.dataclass(frozen=True)
class CameraParams:
    """One random camera: colour matrix and white-balance / brightness gains."""

    rgb2cam: np.ndarray  # [3, 3], rows sum to 1
    rgb_gain: float  # overall brightness gain (linear image is divided by it)
    red_gain: float  # white-balance gain of the red channel
    blue_gain: float  # white-balance gain of the blue channel

    @property
    def cam2rgb(self) -> np.ndarray:
        """[3, 3] inverse colour matrix used by `process`."""
        return np.linalg.inv(self.rgb2cam)

    @property
    def inverse_gains(self) -> np.ndarray:
        """[3] per-channel gains applied by `unprocess` (the reciprocals of the camera's WB x brightness)."""
        return np.array([1.0 / self.red_gain, 1.0, 1.0 / self.blue_gain]) / self.rgb_gain


def random_ccm(rng: np.random.Generator) -> np.ndarray:
    """Random RGB->camera matrix: a random convex combination of the XYZ->camera matrices, times sRGB->XYZ.

    Rows are normalised to sum to 1 so that white stays white (as in the paper).
    """
    weights = rng.uniform(size=len(XYZ2CAMS))
    weights = weights / weights.sum()
    xyz2cam = np.tensordot(weights, XYZ2CAMS, axes=1)
    rgb2cam = xyz2cam @ RGB2XYZ
    return rgb2cam / rgb2cam.sum(axis=-1, keepdims=True)


def sample_camera_params(rng: np.random.Generator, cfg: ml_collections.ConfigDict) -> CameraParams:
    """Draws a camera: CCM, red gain U(red_gain_range), blue gain U(blue_gain_range), rgb gain 1/N(mean, std).

    Args:
      rng: randomness source.
      cfg: the 'low_light' sub-config of `configs.degradations.get_noise_config()`.
    """
    rgb2cam = random_ccm(rng)
    rgb_gain = 1.0 / rng.normal(cfg.rgb_gain_inverse_mean, cfg.rgb_gain_inverse_std)
    red_gain = rng.uniform(*cfg.red_gain_range)
    blue_gain = rng.uniform(*cfg.blue_gain_range)
    return CameraParams(rgb2cam=rgb2cam, rgb_gain=float(rgb_gain), red_gain=float(red_gain),
                        blue_gain=float(blue_gain))


def inverse_smoothstep(image: np.ndarray) -> np.ndarray:
    """Inverse of the global tone curve 3x^2 - 2x^3 (input clipped to [0, 1])."""
    image = np.clip(image, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * image) / 3.0)


def smoothstep(image: np.ndarray) -> np.ndarray:
    """Global tone curve of the paper, 3x^2 - 2x^3, on [0, 1]."""
    return 3.0 * image**2 - 2.0 * image**3


def _highlight_mask(gray: np.ndarray) -> np.ndarray:
    """[..., 1] weight rising from 0 at the inflection to 1 at white (squared ramp, as in the paper)."""
    return (np.maximum(gray - HIGHLIGHT_INFLECTION, 0.0) / (1.0 - HIGHLIGHT_INFLECTION)) ** 2


def _safe_gains(gray: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """[..., 3] gains faded towards 1 near white but never below the plain gains."""
    mask = _highlight_mask(gray)
    return np.maximum(mask + (1.0 - mask) * gains, gains)


def _invert_safe_gains(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Exact inverse of `x * _safe_gains(mean(x), gains)`: solves for the gray level t = mean(x) per pixel.

    For t <= inflection the mask is 0 and x = y / gains. Otherwise F(t) = mean(y / safe_gains(t)) - t is
    decreasing (safe gains grow with t) with F(inflection) > 0 >= F(t0), t0 = mean(y / gains): bisect.
    """
    plain = image / gains
    bright = plain.mean(axis=-1) > HIGHLIGHT_INFLECTION  # [H, W]; usually few pixels, so bisect only those
    if not bright.any():
        return plain
    y = image[bright]  # [N, 3]
    lo = np.full((y.shape[0], 1), HIGHLIGHT_INFLECTION, y.dtype)
    hi = np.maximum(plain[bright].mean(axis=-1, keepdims=True), lo)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        positive = (y / _safe_gains(mid, gains)).mean(axis=-1, keepdims=True) > mid
        lo = np.where(positive, mid, lo)
        hi = np.where(positive, hi, mid)
    out = plain.copy()
    out[bright] = y / _safe_gains(0.5 * (lo + hi), gains)
    return out


def unprocess(image: np.ndarray, params: CameraParams, preserve_highlights: bool = True) -> np.ndarray:
    """sRGB [H, W, 3] in [0, 1] -> linear camera RGB [H, W, 3] float32 (not clipped, see module docstring).

    Args:
      image: [H, W, 3] sRGB image in [0, 1].
      params: the camera, from `sample_camera_params`.
      preserve_highlights: use the paper's highlight-preserving ("safe") inverse gains.
    """
    # float32 throughout: half the time of float64, and the round trip still holds to ~1e-6.
    x = inverse_smoothstep(np.asarray(image, np.float32))
    x = np.maximum(x, np.float32(_EPS)) ** np.float32(GAMMA)
    x = x @ params.rgb2cam.T.astype(np.float32)
    gains = params.inverse_gains.astype(np.float32)
    if preserve_highlights:
        return x * _safe_gains(x.mean(axis=-1, keepdims=True), gains)
    return x * gains


def process(linear: np.ndarray, params: CameraParams, preserve_highlights: bool = True) -> np.ndarray:
    """Linear camera RGB [H, W, 3] -> sRGB [H, W, 3] float32 in [0, 1]; the inverse of `unprocess`.

    Args:
      linear: [H, W, 3] linear camera RGB (possibly noisy, any range).
      params: the same camera as used in `unprocess`.
      preserve_highlights: must match the `unprocess` call.
    """
    gains = params.inverse_gains.astype(np.float32)
    x = np.asarray(linear, np.float32)
    x = _invert_safe_gains(x, gains) if preserve_highlights else x / gains
    x = np.clip(x @ params.cam2rgb.T.astype(np.float32), 0.0, 1.0)
    x = np.maximum(x, np.float32(_EPS)) ** np.float32(1.0 / GAMMA)
    return smoothstep(x)


def sample_noise_levels(rng: np.random.Generator, cfg: ml_collections.ConfigDict) -> tuple[float, float]:
    """(shot, read) variance factors: log shot ~ U(log range), log read = slope*log shot + intercept + N(0, s).

    Args:
      rng: randomness source.
      cfg: the 'low_light' sub-config (shot_noise_range, read_noise_slope/intercept/log_std).
    """
    lo, hi = cfg.shot_noise_range
    log_shot = rng.uniform(np.log(lo), np.log(hi))
    log_read = cfg.read_noise_slope * log_shot + cfg.read_noise_intercept + rng.normal(0.0, cfg.read_noise_log_std)
    return float(np.exp(log_shot)), float(np.exp(log_read))


def add_read_shot_noise(linear: np.ndarray, rng: np.random.Generator, shot: float, read: float) -> np.ndarray:
    """Heteroscedastic Gaussian noise: y = x + N(0, shot * x + read), i.i.d. per pixel and channel.

    Negative signal (possible after the colour matrix) contributes no shot noise.
    """
    variance = shot * np.maximum(linear, 0.0) + read
    return linear + rng.standard_normal(linear.shape, dtype=np.float32) * np.sqrt(variance)
