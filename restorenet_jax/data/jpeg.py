"""Baseline JPEG's lossy core in numpy (the reference for `device_jpeg.py`): 8x8 block DCT quantisation.

sRGB [0, 1] -> YCbCr (JFIF, 0..255) -> edge-pad to a multiple of 16 -> 4:2:0 chroma (2x2 means) -> level shift
-> orthonormal 8x8 DCT per block -> divide by the quality-scaled standard tables -> round -> multiply back ->
inverse DCT -> chroma upsampled 2x (libjpeg's "fancy" triangle filter) -> RGB, clipped to [0, 1].

What the entropy coder does is lossless, so this is all of JPEG's (and, roughly, an H.264 intra frame's) damage:
blocking at 8x8 boundaries, ringing near edges, colour bleeding. The quantisation tables and their quality scaling
are libjpeg's (Pillow writes the same tables, which the tests check). Two halves, `coefficients` (up to the
rounding) and `reconstruct` (from rounded coefficients), so that a test can feed both implementations the same
rounded values: float summation order can move a coefficient across a rounding boundary.
"""
from __future__ import annotations

import numpy as np

BLOCK = 8
MCU = 16  # 4:2:0: one chroma block covers 16x16 pixels, so planes are padded to a multiple of 16

# ITU-T T.81 Annex K tables (natural row-major order), the ones libjpeg scales by quality.
LUMA_TABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.int32)
CHROMA_TABLE = np.full((8, 8), 99, np.int32)
CHROMA_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

# JFIF full-range YCbCr on the 0..255 scale (Cb, Cr offset by 128).
RGB2YCBCR = np.array([[0.299, 0.587, 0.114],
                      [-0.168735892, -0.331264108, 0.5],
                      [0.5, -0.418687589, -0.081312411]], np.float64)
YCBCR2RGB = np.linalg.inv(RGB2YCBCR)
CHROMA_OFFSET = np.array([0.0, 128.0, 128.0])


def dct_matrix() -> np.ndarray:
    """[8, 8] orthonormal DCT-II matrix C: coefficients = C @ block @ C.T, block = C.T @ coefficients @ C."""
    k, n = np.meshgrid(np.arange(BLOCK), np.arange(BLOCK), indexing='ij')
    c = np.cos((2 * n + 1) * k * np.pi / (2 * BLOCK)) * np.sqrt(2.0 / BLOCK)
    c[0] /= np.sqrt(2.0)
    return c


def quality_scale(quality):
    """libjpeg's percentage scale of the base tables for quality 1..100 (integer arithmetic, like libjpeg)."""
    quality = np.clip(quality, 1, 100)
    return np.where(quality < 50, 5000 // quality, 200 - 2 * quality)


def quant_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    """(luma, chroma) [8, 8] int32 quantisation tables at `quality` (1..100), clipped to 1..255 (baseline)."""
    scale = int(quality_scale(int(quality)))
    return tuple(np.clip((t * scale + 50) // 100, 1, 255).astype(np.int32) for t in (LUMA_TABLE, CHROMA_TABLE))


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] RGB in [0, 1] -> [..., 3] YCbCr on 0..255 (Cb, Cr centred on 128)."""
    return (rgb * 255.0) @ RGB2YCBCR.T.astype(np.float32) + CHROMA_OFFSET.astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of rgb_to_ycbcr (not clipped)."""
    return ((ycc - CHROMA_OFFSET.astype(np.float32)) @ YCBCR2RGB.T.astype(np.float32)) / 255.0


def _padded_planes(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[H, W, 3] RGB -> (luma [H', W'], chroma [H'/2, W'/2, 2]), H', W' the multiples of 16 (edge padding)."""
    h, w = image.shape[:2]
    ycc = rgb_to_ycbcr(np.pad(image, ((0, -h % MCU), (0, -w % MCU), (0, 0)), mode='edge'))
    hp, wp = ycc.shape[:2]
    chroma = ycc[..., 1:].reshape(hp // 2, 2, wp // 2, 2, 2).mean(axis=(1, 3))
    return ycc[..., 0], chroma


def _to_blocks(plane: np.ndarray) -> np.ndarray:
    """[h, w] -> [h/8, w/8, 8, 8]."""
    h, w = plane.shape
    return plane.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(0, 2, 1, 3)


def _from_blocks(blocks: np.ndarray) -> np.ndarray:
    """[h/8, w/8, 8, 8] -> [h, w]."""
    hb, wb = blocks.shape[:2]
    return blocks.transpose(0, 2, 1, 3).reshape(hb * BLOCK, wb * BLOCK)


def upsample2(plane: np.ndarray, axis: int) -> np.ndarray:
    """2x upsampling along `axis` with weights 3/4, 1/4 of the nearest two samples, edges replicated (libjpeg's
    fancy upsampling, i.e. bilinear on the co-sited grid)."""
    n = plane.shape[axis]
    idx = np.arange(n)
    near = plane
    before = np.take(plane, np.maximum(idx - 1, 0), axis=axis)
    after = np.take(plane, np.minimum(idx + 1, n - 1), axis=axis)
    even, odd = 0.75 * near + 0.25 * before, 0.75 * near + 0.25 * after
    return np.stack([even, odd], axis=axis + 1).reshape(plane.shape[:axis] + (2 * n,) + plane.shape[axis + 1:])


def coefficients(image: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DCT coefficients divided by their quantisation step, before rounding.

    Args:
      image: [H, W, 3] RGB in [0, 1].
      quality: 1..100.

    Returns:
      (Y, Cb, Cr) blocks [H'/8, W'/8, 8, 8] (luma) and [H'/16, W'/16, 8, 8] (chroma), float32.
    """
    luma_q, chroma_q = quant_tables(quality)
    c = dct_matrix().astype(np.float32)
    luma, chroma = _padded_planes(np.asarray(image, np.float32))
    planes = [(luma, luma_q), (chroma[..., 0], chroma_q), (chroma[..., 1], chroma_q)]
    return tuple((c @ _to_blocks(p - 128.0) @ c.T) / q.astype(np.float32) for p, q in planes)


def reconstruct(rounded: tuple[np.ndarray, np.ndarray, np.ndarray], quality: int,
                shape: tuple[int, int]) -> np.ndarray:
    """The decoded image from rounded (quantised) coefficients, cropped to `shape` (H, W), clipped to [0, 1]."""
    luma_q, chroma_q = quant_tables(quality)
    c = dct_matrix().astype(np.float32)
    y, cb, cr = (_from_blocks(c.T @ (r * q.astype(np.float32)) @ c) + 128.0
                 for r, q in zip(rounded, (luma_q, chroma_q, chroma_q)))
    chroma = upsample2(upsample2(np.stack([cb, cr], -1), 0), 1)
    rgb = ycbcr_to_rgb(np.concatenate([y[..., None], chroma], -1))
    return np.clip(rgb[:shape[0], :shape[1]], 0.0, 1.0).astype(np.float32)


def compress(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-compress and decode [H, W, 3] RGB in [0, 1] at `quality` (1..100): [H, W, 3] float32 in [0, 1]."""
    coefs = coefficients(image, quality)
    return reconstruct(tuple(np.round(k) for k in coefs), quality, image.shape[:2])
