"""Temporal restoration of video: each frame fused with its aligned neighbours before the model restores it.

A fixed camera sees the same scene in every frame while its sensor noise changes from frame to frame: the mean of
n aligned frames has 1/sqrt(n) of the noise (five frames: about +7 dB) before any network runs. For frame t the
frames t-k .. t+k (at the ends of a clip, the 2k nearest frames) are aligned to it (`alignment`: local motion,
with the camera's shake given to the background) and averaged with per-pixel weights that fall to zero where the
alignment failed: a neighbour counts fully where its aligned residual against frame t is what the noise alone
explains, and not at all where it is clearly larger (a person or car the flow did not follow, a disocclusion, the
frame edge), so moving objects do not ghost and keep at least the single-frame quality. The restoration model then
runs on the fused frame.

The noise level is measured, not configured: per neighbour, from the median absolute aligned residual.

After the model, each restored frame is fused once more with its +-`post_radius(k)` restored neighbours, aligned
on the restored frames themselves (their flow is far cleaner than the noisy frames'): what noise the model left
differs from frame to frame and averages out too. On the footage benchmark (240x320 clips of 12 frames, the demo
model), radius 4 before and after the model gains +1.9 to +3.2 dB over single frames (radius 2 before it alone:
+1.3 to +2.2) and +0.6 to +1.6 dB inside the moving figure, for 1.4-1.8x the single-frame time.

`fuse_stream` is the streaming form used by footage jobs (a ring buffer of 4k+1 frames; `drop` skips the context
frames a resumed job re-reads before its first new frame, so its outputs equal an uninterrupted run's);
`fuse_clip` and `restore_clip` work on a clip held in memory.
"""
from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import cv2
import numpy as np

from restorenet_jax.inference import alignment

# Noise level above which `choose_k` turns temporal fusion on (std of the frame's noise, [0, 1] scale): about one
# grey level of 8-bit video. Clean, well-lit footage gains little from fusion and would only pay its cost.
AUTO_NOISE = 0.004
# The radius `--temporal auto` uses: radius 4 (9 frames) restores +0.3-0.5 dB better than 2 on the footage
# benchmark; each neighbour costs one flow (~6 ms per 240x320 pair at the default preset) and one resampling.
AUTO_K = 4


def post_radius(k: int) -> int:
    """The radius of the fusion of restored frames that follows a fusion of radius `k` before the model (radius 4
    after the model gains ~0.1 dB over radius 2 on the footage benchmark, for four more flows per frame)."""
    return k


@dataclass(frozen=True)
class FusionOptions:
    """How neighbours are weighted.

    Attributes:
      box: side of the square window (pixels) over which the squared residual is averaged before it is compared
        with the noise: a single pixel's residual is too noisy to judge alignment by.
      lo, hi: residual / expected-residual ratios: weight 1 up to `lo`, 0 from `hi`, linear between. For an
        aligned neighbour the ratio is ~1 (spread ~0.16 over a 5x5 box of white noise); misaligned structure drives
        it far above. A slightly misaligned neighbour blurs detail the model would have kept: these strict bounds
        (after 1.6 and 3.2 over a 7x7 box) restore +0.1-0.2 dB better on the footage benchmark's moving scenes;
        looser ones suit spatially correlated noise (H.264) a little better (~0.05 dB).
      preset: the DIS flow preset (`alignment.PRESETS`): 'medium' restores +0.1-0.2 dB better than 'fast' on the
        footage benchmark for ~4 ms more per frame pair.
      global_motion: give the camera's shake, fitted to the flow, to the background (`alignment.Aligner`).
      post_preset: the DIS preset of the fusion after the model (`after_model`): restored frames are clean, and
        'fast' aligns them as well as 'medium' does (within 0.01 dB on the footage benchmark) in a third of the time.
    """

    box: int = 5
    lo: float = 1.3
    hi: float = 2.6
    preset: str = "medium"
    global_motion: bool = True
    post_preset: str = "fast"

    def after_model(self) -> "FusionOptions":
        """The options of the fusion of restored frames."""
        return dataclasses.replace(self, preset=self.post_preset)


def estimate_noise(frame: np.ndarray) -> float:
    """Noise std of one frame ([0, 1] scale), by Immerkaer's fast estimate (a Laplacian-difference kernel that
    cancels smooth image structure) on its luma; edges bias it up a little."""
    x = np.asarray(frame, np.float32)
    if np.asarray(frame).dtype == np.uint8:
        x = x / 255.0
    gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(gray, -1, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.mean(np.abs(r)) / 6.0)


def choose_k(first_frame: np.ndarray, k: int = AUTO_K, threshold: float = AUTO_NOISE) -> int:
    """The temporal radius for a video whose first frame is given: `k` if its noise exceeds `threshold`, else 0."""
    return k if estimate_noise(first_frame) > threshold else 0


def _as_float(frame: np.ndarray) -> np.ndarray:
    a = np.asarray(frame)
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def fusion_weights(ref: np.ndarray, warped: np.ndarray, valid: np.ndarray, opts: FusionOptions) -> np.ndarray:
    """[H, W] weights in [0, 1] of an aligned neighbour `warped` for the reference frame `ref` ([H, W, 3] float)."""
    diff = warped - ref
    d2 = np.square(diff).reshape(-1, diff.shape[-1]) @ np.full(diff.shape[-1], 1 / diff.shape[-1], np.float32)
    d2 = d2.reshape(diff.shape[:2])  # the mean over channels (a matrix product: ~5x faster than np.mean here)
    r = diff[::3, ::3].ravel()
    # The residual of two aligned noisy frames has twice the noise variance; its median absolute deviation
    # (1.4826 MAD = std for Gaussian noise) ignores the few pixels the alignment got wrong.
    sigma2 = float(np.square(1.4826 * np.median(np.abs(r - np.median(r))))) + 1e-8
    ratio = cv2.blur(d2, (opts.box, opts.box), borderType=cv2.BORDER_REFLECT) / sigma2
    w = np.clip((opts.hi - ratio) / (opts.hi - opts.lo), 0.0, 1.0)
    # Eroded validity: a sample point near the frame edge that fell outside is replaced by replicated edge pixels.
    valid = cv2.erode(valid, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return (w * valid).astype(np.float32)


def fuse(ref: np.ndarray, ref_gray: np.ndarray, neighbours: Sequence[tuple[np.ndarray, np.ndarray]],
         aligner: alignment.Aligner, opts: FusionOptions = FusionOptions()) -> np.ndarray:
    """Frame `ref` fused with its `neighbours` ((frame, flow image) pairs), all [H, W, 3] float in [0, 1].

    Returns the weighted mean (float32 [H, W, 3]); the reference always has weight 1.
    """
    acc = ref.astype(np.float32, copy=True)
    total = np.ones(ref.shape[:2], np.float32)
    for frame, gray in neighbours:
        warped, valid = alignment.align(aligner, ref_gray, gray, frame)
        w = fusion_weights(ref, warped, valid, opts)
        acc += w[..., None] * warped
        total += w
    return acc / total[..., None]


def window(t: int, k: int, n: Optional[int]) -> tuple[int, int]:
    """The frames [first, last] fused for frame t: t-k .. t+k, shifted inwards at the ends of a video of n frames
    (None: not yet known, t+k frames exist) so that every frame of a video of 2k+1 frames or more has 2k
    neighbours. On the footage benchmark's static scene, frame 0 of a 12-frame clip fused with 4 neighbours
    restored 0.7 dB worse than the middle frames, with 8 neighbours 0.1 dB; a clip's first and last seconds are
    often the ones that matter."""
    first, last = t - k, t + k
    if first < 0:
        first, last = 0, 2 * k
    if n is not None and last > n - 1:
        first, last = first - (last - (n - 1)), n - 1
    return max(first, 0), last


def fuse_stream(frames: Iterable[np.ndarray], k: int, drop: int = 0, opts: FusionOptions = FusionOptions()
                ) -> Iterator[np.ndarray]:
    """Fused frames (float32 [H, W, 3] in [0, 1]) of a stream of frames (uint8 or float), one per input frame
    from the `drop`-th on; frame t uses the frames `window(t, k, n)` of the stream (n: its length).

    Reads up to 2k frames ahead and keeps 2k behind (a ring buffer of 4k+1 frames). Only frames `drop - 2k` ..
    are ever used for output `drop`: a resumed job passes the 2k frames before its first new frame with
    `drop=2k` (fewer at the start of the video) and gets the same outputs.
    """
    if k < 0 or drop < 0:
        raise ValueError("k and drop must be >= 0")
    aligner = alignment.Aligner(opts.preset, opts.global_motion)
    buf: collections.deque = collections.deque()  # (index, frame, flow image)
    source = iter(frames)
    read, centre, n = 0, 0, None
    while True:
        while n is None and read <= window(centre, k, None)[1]:
            try:
                f = _as_float(next(source))
            except StopIteration:
                n = read
                break
            buf.append((read, f, alignment.flow_image(f) if k else None))
            read += 1
        if centre >= read:
            return
        first, last = window(centre, k, n)
        while buf[0][0] < centre - 2 * k:
            buf.popleft()
        if centre >= drop:
            (_, ref, ref_gray), = [e for e in buf if e[0] == centre]
            others = [(f, g) for i, f, g in buf if i != centre and first <= i <= last]
            yield fuse(ref, ref_gray, others, aligner, opts) if others else ref
        centre += 1


def fuse_clip(frames: Sequence[np.ndarray], k: int, opts: FusionOptions = FusionOptions()) -> np.ndarray:
    """`fuse_stream` over a clip in memory: [N, H, W, 3] float32 fused frames."""
    return np.stack(list(fuse_stream(frames, k, opts=opts)))


def restore_clip(restore_batch_fn: Callable[[np.ndarray], Any], frames: Sequence[np.ndarray], k: int,
                 batch: int = 1, opts: FusionOptions = FusionOptions()) -> np.ndarray:
    """Restores a clip in memory: each frame fused with its +-k aligned neighbours, then the model, then each
    restored frame fused with its +-`post_radius(k)` restored neighbours.

    Args:
      restore_batch_fn: [B, H, W, 3] float in [0, 1] -> restored [B, H, W, 3] (a Restorer's `restore_batch`).
      frames: the clip, uint8 or float in [0, 1] frames of one size.
      k: temporal radius (0: single-frame restoration of every frame).
      batch: frames per forward pass (the last batch is padded to this size).
    Returns:
      [N, H, W, 3] float32 in [0, 1].
    """
    out, chunk = [], []

    def run() -> None:
        x = np.stack(chunk + [chunk[-1]] * (batch - len(chunk)))
        out.extend(np.clip(np.asarray(restore_batch_fn(x), np.float32)[:len(chunk)], 0.0, 1.0))
        chunk.clear()

    for f in fuse_stream(frames, k, opts=opts):
        chunk.append(f)
        if len(chunk) == batch:
            run()
    if chunk:
        run()
    if not post_radius(k):
        return np.stack(out)
    # Clipped again: bicubic resampling in the fusion can overshoot [0, 1] a little.
    return np.clip(fuse_clip(out, post_radius(k), opts.after_model()), 0.0, 1.0)
