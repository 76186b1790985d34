"""Per-example transforms: decoding, the brightness filter, paired augmentation, the four input kinds.

All numpy, per image [H, W, 3]; randomness only from an explicit np.random.Generator. Decoding, the filter, crops
and flips work on uint8 (the host stage never needs floats when the degradations run on the device); `degrade`
and the float helpers take float32 in [0, 1].
"""
from __future__ import annotations

import io

import ml_collections
import numpy as np
from absl import logging
from PIL import Image

from restorenet_jax.data import degradations

# The original RestoreNet's input kinds, in the order of the ratio string "BN:B:N:GT".
KINDS = ('blur_noise', 'blur', 'noise', 'gt')


class CorruptImageError(ValueError):
    """An image in a record cannot be decoded, or input and target do not match."""


def parse_ratio(ratio: str) -> np.ndarray:
    """'13:2:2:1' -> probabilities over KINDS, float64 [4]. Zeros allowed ('1:0:0:0'); the sum must be > 0."""
    parts = [float(p) for p in ratio.split(':')]
    if len(parts) != len(KINDS) or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ValueError(f'ratio {ratio!r} must be four non-negative numbers BN:B:N:GT with a positive sum')
    probs = np.asarray(parts, np.float64)
    return probs / probs.sum()


def draw_kind(rng: np.random.Generator, probs: np.ndarray) -> str:
    """One kind drawn with the ratio's probabilities."""
    return KINDS[int(rng.choice(len(KINDS), p=probs))]


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def decode_image(data: bytes) -> np.ndarray:
    """PNG/any PIL-readable bytes -> uint8 [H, W, 3]; raises CorruptImageError.

    8-bit RGB (and palette) PNGs go through libpng (imagecodecs): about twice as fast as PIL on 720p frames, which
    matters because decoding is most of the host stage's work. Everything else (JPEG, grey, alpha, 16-bit) goes
    through PIL's RGB conversion.
    """
    if data[:8] == _PNG_SIGNATURE:
        import imagecodecs  # imported late: the device degradations use this module without any decoder

        try:
            array = imagecodecs.png_decode(data)
        except Exception as e:  # imagecodecs raises its own error types for bad or truncated streams
            raise CorruptImageError(f'corrupt or truncated PNG image ({e})') from e
        if array.dtype == np.uint8 and array.ndim == 3 and array.shape[-1] == 3:
            return array
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # forces a full decode: truncated files fail here, not later
            return np.asarray(im.convert('RGB'))
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError...) for bad bytes
        raise CorruptImageError(str(e)) from e


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1] (float images are returned as float32 unchanged)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return np.asarray(image, np.float32)


def decode_png(data: bytes) -> np.ndarray:
    """PNG/any PIL-readable bytes -> float32 [H, W, 3] in [0, 1]; raises CorruptImageError."""
    return to_float(decode_image(data))


def decode_pair(record: dict, as_float: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Decode a record's input and target (float32 in [0, 1], or uint8 with as_float=False); raises
    CorruptImageError if either fails or their shapes differ.

    An empty input (own clean folders, pair kind 'clean') stands for the target itself, decoded once.
    """
    tgt = decode_image(record['target'])
    inp = decode_image(record['input']) if len(record['input']) else tgt
    if inp.shape != tgt.shape:
        raise CorruptImageError(f'input {inp.shape} and target {tgt.shape} differ')
    if not as_float:
        return inp, tgt
    tgt_f = to_float(tgt)
    return (tgt_f if inp is tgt else to_float(inp)), tgt_f


def decode_or_skip(record: dict, on_corrupt: str, where: str,
                   as_float: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
    """decode_pair under the `on_corrupt` policy: 'raise' re-raises CorruptImageError; 'skip' logs a warning naming
    `where` and returns None (the caller counts the skip)."""
    try:
        return decode_pair(record, as_float)
    except CorruptImageError as e:
        if on_corrupt == 'raise':
            raise
        logging.warning('%s: skipping corrupt example (%s)', where, e)
        return None


def mean_value(image: np.ndarray) -> float:
    """Mean HSV value V in [0, 1] of an image [H, W, 3] (uint8, or float in [0, 1]): max over RGB per pixel, mean
    over pixels."""
    # Two elementwise maxima instead of a reduction over the 3-long last axis: 20x faster on a 720p frame.
    v = np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2])
    mean = float(v.mean(dtype=np.float64))
    return mean / 255.0 if image.dtype == np.uint8 else mean


def is_dark(image: np.ndarray, threshold: float) -> bool:
    """True when the image is excluded by the brightness filter (V <= threshold; negative disables)."""
    return threshold >= 0 and mean_value(image) <= threshold


def random_crop_pair(inp: np.ndarray, tgt: np.ndarray, size: int, rng: np.random.Generator,
                     small_images: str = 'pad') -> tuple[np.ndarray, np.ndarray] | None:
    """The same random [size, size] crop of input and target.

    Smaller images are reflect-padded (bottom/right, the same on both) when small_images == 'pad', or give None
    when 'skip'.
    """
    h, w = tgt.shape[:2]
    if h < size or w < size:
        if small_images == 'skip':
            return None
        if small_images != 'pad':
            raise ValueError(f"small_images must be 'pad' or 'skip', got {small_images!r}")
        pad = ((0, max(size - h, 0)), (0, max(size - w, 0)), (0, 0))
        # 'symmetric' also works when the image is less than half the crop (reflect would need repeated calls).
        inp, tgt = np.pad(inp, pad, mode='symmetric'), np.pad(tgt, pad, mode='symmetric')
        h, w = tgt.shape[:2]
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return inp[y:y + size, x:x + size], tgt[y:y + size, x:x + size]


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Centre [size, size] crop (the whole image along an axis shorter than size); size 0 = unchanged."""
    if size <= 0:
        return image
    h, w = image.shape[:2]
    y, x = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return image[y:y + size, x:x + size]


def random_flip_rot(inp: np.ndarray, tgt: np.ndarray, rng: np.random.Generator, flip: bool,
                    rot90: bool) -> tuple[np.ndarray, np.ndarray]:
    """Identical random horizontal/vertical flips and 90-degree rotation on input and target."""
    # Draw all three bits always, so the stream of random numbers does not depend on the config.
    hflip, vflip, rot = rng.integers(0, 2, size=3)
    if flip and hflip:
        inp, tgt = inp[:, ::-1], tgt[:, ::-1]
    if flip and vflip:
        inp, tgt = inp[::-1], tgt[::-1]
    if rot90 and rot:
        inp, tgt = np.rot90(inp), np.rot90(tgt)
    return np.ascontiguousarray(inp), np.ascontiguousarray(tgt)


def degrade(inp: np.ndarray, tgt: np.ndarray, kind: str, pair_kind: str, rng: np.random.Generator,
            data_cfg: ml_collections.ConfigDict) -> np.ndarray:
    """The network input of one kind, from a (degraded input, clean target) pair.

    Blur pairs (input = blurred target): BN = noise(blurred), B = blurred, N = noise(sharp), GT = sharp.
    Noise pairs (input = real noisy target, SIDD): BN = noise(synthetic blur(sharp)), B = synthetic blur(sharp),
    N = the real noisy input, GT = sharp.
    Clean images (own folders, input = target): every degradation synthetic.
    """
    if kind == 'gt':
        return tgt
    if pair_kind == 'blur':
        blurred, noisy = inp, None
    elif pair_kind == 'noise':
        blurred, noisy = None, inp
    elif pair_kind == 'clean':
        blurred, noisy = None, None
    else:
        raise ValueError(f'unknown pair kind {pair_kind!r}')
    if kind == 'noise':
        return noisy if noisy is not None else degradations.add_noise(tgt, rng, data_cfg.noise)
    if blurred is None:
        blurred = degradations.synthetic_blur(tgt, rng, data_cfg.blur)
    if kind == 'blur':
        return blurred
    if kind == 'blur_noise':
        return degradations.add_noise(blurred, rng, data_cfg.noise)
    raise ValueError(f'unknown input kind {kind!r}; expected one of {KINDS}')
