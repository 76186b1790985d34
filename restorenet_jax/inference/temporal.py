"""Temporal restoration of video: each frame fused with its aligned neighbours before the model restores it.

A fixed camera sees the same scene in every frame while its sensor noise changes from frame to frame: the mean of
n aligned frames has 1/sqrt(n) of the noise (five frames: about +7 dB) before any network runs. For frame t the
frames t-k .. t+k (at the ends of a clip, the 2k nearest frames) are aligned to it (`alignment`: local motion,
with the camera's shake given to the background) and averaged with per-pixel weights that fall to zero where the
alignment failed: a neighbour counts fully where its aligned residual against frame t is what the noise alone
explains, and not at all where it is clearly larger (a person or car the flow did not follow, a disocclusion, the
frame edge), so moving objects do not ghost and keep at least the single-frame quality. The restoration model then
runs on the fused frame, and gets back the detail it removed beyond the fused frame's noise (`keep_detail`: a model
trained on single frames smooths a fused frame as hard as a noisy one).

The noise level is measured, not configured: per neighbour, from the median absolute aligned residual (for the
weights), and per pixel, from the spread of the aligned samples around their mean (for `keep_detail`).

After the model, each restored frame is fused once more with its +-`post_radius(k)` restored neighbours, aligned
on the restored frames themselves (their flow is far cleaner than the noisy frames'): what noise the model left
differs from frame to frame and averages out too. On the footage benchmark (240x320 clips of 12 frames, the demo
model), radius 4 before and after the model gains +1.9 to +4.7 dB over single frames (+3.8 to +4.7 on
independent noise; +1.9 and +2.9 on CCTV and H.264 noise, which neighbouring frames partly share) and +0.5 to +3.2
dB inside the moving figure, for 1.3-1.8x the single-frame time; without `keep_detail`, +1.9 to +3.2 dB.

`fuse_stream` is the streaming form used by footage jobs (a ring buffer of 4k+1 frames; `drop` skips the context
frames a resumed job re-reads before its first new frame, so its outputs equal an uninterrupted run's);
`fuse_clip` and `restore_clip` work on a clip held in memory.
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
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
# How much more residual noise than the best-aligned neighbour's a neighbour may show before it is judged by the
# best one's (`fuse`). Neighbours of one scene differ by a little (motion, the distance in time): judging every
# neighbour by the smallest (a ratio of 1) cost up to 0.6 dB on the footage benchmark, 1.5 up to 0.13 dB, 4 at most
# 0.02 dB; a neighbour across a scene cut showed ~100x.
CUT_RATIO = 4.0


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
      detail_box: window side (pixels) over which the fused frame's noise is measured and `keep_detail` weighs
        what the model removed against it (5 to 9 gave the same results within 0.05 dB on the footage benchmark).
    """

    box: int = 5
    lo: float = 1.3
    hi: float = 2.6
    preset: str = "medium"
    global_motion: bool = True
    post_preset: str = "fast"
    detail_box: int = 7

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


def residual_noise(ref: np.ndarray, warped: np.ndarray) -> float:
    """Variance of the noise in the residual of an aligned neighbour `warped` against `ref` ([H, W, 3] float).

    The residual of two aligned noisy frames has twice the noise variance; its median absolute deviation
    (1.4826 MAD = std for Gaussian noise) ignores the few pixels the alignment got wrong.
    """
    r = (warped - ref)[::3, ::3].ravel()
    return float(np.square(1.4826 * np.median(np.abs(r - np.median(r))))) + 1e-8


def fusion_weights(ref: np.ndarray, warped: np.ndarray, valid: np.ndarray, opts: FusionOptions,
                   sigma2: float) -> np.ndarray:
    """[H, W] weights in [0, 1] of an aligned neighbour `warped` for the reference frame `ref` ([H, W, 3] float),
    judged against the residual noise variance `sigma2` (`residual_noise`, capped in `fuse`)."""
    d2 = _channel_mean(np.square(warped - ref))
    ratio = cv2.blur(d2, (opts.box, opts.box), borderType=cv2.BORDER_REFLECT) / sigma2
    w = np.clip((opts.hi - ratio) / (opts.hi - opts.lo), 0.0, 1.0)
    # Eroded validity: a sample point near the frame edge that fell outside is replaced by replicated edge pixels.
    valid = cv2.erode(valid, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return (w * valid).astype(np.float32)


def fuse(ref: np.ndarray, ref_gray: np.ndarray, neighbours: Sequence[tuple[np.ndarray, np.ndarray]],
         aligner: alignment.Aligner, opts: FusionOptions = FusionOptions()) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Frame `ref` fused with its `neighbours` ((frame, flow image) pairs), all [H, W, 3] float in [0, 1].

    Each neighbour is judged by its own residual noise (`residual_noise`), but by no more than `CUT_RATIO` times
    the smallest among the neighbours: the noise is the same in every frame, and a neighbour that does not show
    the scene at all (across a scene cut, a camera switching views) has a residual whose spread is large
    everywhere; judged by that spread alone it would look consistent and be averaged in.

    Returns:
      the weighted mean (float32 [H, W, 3]; the reference always has weight 1) and the variance of its noise
      (float32 [H, W], `_mean_noise`; None if no neighbour counted), which `keep_detail` compares with what the
      model removes.
    """
    aligned, own = [], []
    for frame, gray in neighbours:
        warped, valid = alignment.align(aligner, ref_gray, gray, frame)
        own.append(residual_noise(ref, warped))
        # Kept until every neighbour's noise is known, in half precision (7 instead of 16 bytes a pixel; the
        # rounding, < 1/4000, is far below a grey level): 2k frames at once weigh on 4K footage.
        aligned.append((warped.astype(np.float16), valid.astype(bool)))
    cap = CUT_RATIO * min(own, default=0.0)
    acc = ref.astype(np.float32, copy=True)
    total = np.ones(ref.shape[:2], np.float32)
    total_sq = total.copy()
    acc_sq = _channel_mean(np.square(acc))
    for (warped16, valid), sigma2 in zip(aligned, own):
        warped = warped16.astype(np.float32)
        w = fusion_weights(ref, warped, valid.astype(np.uint8), opts, min(sigma2, cap))
        acc += w[..., None] * warped
        acc_sq += w * _channel_mean(np.square(warped))
        total += w
        total_sq += w * w
    mean = acc / total[..., None]
    return mean, _mean_noise(acc_sq - total * _channel_mean(np.square(mean)), total, total_sq, opts.detail_box)


def _channel_mean(x: np.ndarray) -> np.ndarray:
    """[H, W, C] -> [H, W] mean over channels (a matrix product: ~5x faster than np.mean here)."""
    return (x.reshape(-1, x.shape[-1]) @ np.full(x.shape[-1], 1 / x.shape[-1], np.float32)).reshape(x.shape[:2])


def _mean_noise(spread: np.ndarray, total: np.ndarray, total_sq: np.ndarray, box: int) -> Optional[np.ndarray]:
    """Per-pixel noise variance of a weighted mean of frames.

    `spread` is the weighted sum of squared deviations of the aligned samples from their mean, whose expectation
    is sigma^2 (W - W2 / W) for weights summing to W with squares summing to W2. The frames' noise variance sigma^2
    is measured locally (over a `box` window: noise of dark, bright, flat and textured parts differs) from these
    samples themselves, so no noise model is assumed; where the window holds too few neighbour samples (a moving
    object no neighbour matched), the frame's overall level stands in. The mean's noise is sigma^2 W2 / W^2.
    None where no neighbour counted anywhere (a scene cut): there is nothing to measure the noise by.
    """
    dof = total - total_sq / total
    if dof.sum() < 1.0:
        return None
    overall = float(spread.sum() / dof.sum())
    local_dof = cv2.blur(dof, (box, box), borderType=cv2.BORDER_REFLECT)
    local = cv2.blur(np.maximum(spread, 0.0), (box, box), borderType=cv2.BORDER_REFLECT) / np.maximum(local_dof, 1e-3)
    sigma2 = np.where(local_dof > 0.5, local, np.float32(overall))
    return (sigma2 * total_sq / np.square(total)).astype(np.float32)


def keep_detail(fused: np.ndarray, restored: np.ndarray, noise_var: Optional[np.ndarray], box: int) -> np.ndarray:
    """`restored` (the model's output for the fused frame `fused`) with the detail the model removed beyond the
    fused frame's own noise put back, clipped to [0, 1].

    The model was trained on single noisy frames; on a fused frame, with a third of that noise and more, it still
    smooths as hard and removes texture with the noise (on the footage benchmark's textured scene its output was
    no better than the fused frame it was given). What it removed, r = fused - restored, is the fused frame's noise
    plus that lost detail; over a `box` window the detail's share of r's energy is (v - noise) / v (a local Wiener
    estimate, v the window's mean squared r), and that share of r is returned. Where the model removed no more
    than the noise, its output is kept as it is.

    Args:
      fused, restored: [H, W, 3] float in [0, 1].
      noise_var: [H, W] variance of the fused frame's noise (`fuse`); None: `restored` is returned (clipped).
      box: window side in pixels.
    """
    restored = np.asarray(restored, np.float32)
    if noise_var is None:
        return np.clip(restored, 0.0, 1.0)
    removed = np.asarray(fused, np.float32) - restored
    energy = cv2.blur(_channel_mean(np.square(removed)), (box, box), borderType=cv2.BORDER_REFLECT)
    share = np.clip((energy - noise_var) / np.maximum(energy, 1e-12), 0.0, 1.0)
    return np.clip(restored + share[..., None] * removed, 0.0, 1.0)


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


def fuse_stream(frames: Iterable[np.ndarray], k: int, drop: int = 0, opts: FusionOptions = FusionOptions(),
                noise: bool = False) -> Iterator[Any]:
    """Fused frames (float32 [H, W, 3] in [0, 1]) of a stream of frames (uint8 or float), one per input frame
    from the `drop`-th on; frame t uses the frames `window(t, k, n)` of the stream (n: its length). With `noise`,
    (fused frame, its noise variance) pairs (`fuse`; the variance is None for a frame with no neighbour).

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
            fused = fuse(ref, ref_gray, others, aligner, opts) if others else (ref, None)
            yield fused if noise else fused[0]
        centre += 1


def fuse_clip(frames: Sequence[np.ndarray], k: int, opts: FusionOptions = FusionOptions()) -> np.ndarray:
    """`fuse_stream` over a clip in memory: [N, H, W, 3] float32 fused frames."""
    return np.stack(list(fuse_stream(frames, k, opts=opts)))


def with_detail(restore: Callable[[Iterator[np.ndarray]], Iterable[np.ndarray]],
                fused: Iterable[tuple[np.ndarray, Optional[np.ndarray]]], box: int) -> Iterator[np.ndarray]:
    """`restore` (a stream of frames -> their restorations, in order; it may read ahead) run on the fused frames of
    `fused` ((frame, noise variance) pairs from `fuse_stream(..., noise=True)`), each restored frame given back the
    detail the model removed beyond the noise (`keep_detail`)."""
    pending: collections.deque = collections.deque()

    def frames() -> Iterator[np.ndarray]:
        for frame, var in fused:
            pending.append((frame, var))
            yield frame

    for y in restore(frames()):
        frame, var = pending.popleft()
        yield keep_detail(frame, y, var, box)


def restore_clip(restore_batch_fn: Callable[[np.ndarray], Any], frames: Sequence[np.ndarray], k: int,
                 batch: int = 1, opts: FusionOptions = FusionOptions()) -> np.ndarray:
    """Restores a clip in memory: each frame fused with its +-k aligned neighbours, then the model (with the detail
    it removed beyond the fused frame's noise put back, `keep_detail`), then each restored frame fused with its
    +-`post_radius(k)` restored neighbours.

    Args:
      restore_batch_fn: [B, H, W, 3] float in [0, 1] -> restored [B, H, W, 3] (a Restorer's `restore_batch`).
      frames: the clip, uint8 or float in [0, 1] frames of one size.
      k: temporal radius (0: single-frame restoration of every frame).
      batch: frames per forward pass (the last batch is padded to this size).
    Returns:
      [N, H, W, 3] float32 in [0, 1].
    """

    def restore(stream: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        stream = iter(stream)
        while chunk := [_as_float(f) for f in itertools.islice(stream, batch)]:
            x = np.stack(chunk + [chunk[-1]] * (batch - len(chunk)))
            yield from np.clip(np.asarray(restore_batch_fn(x), np.float32)[:len(chunk)], 0.0, 1.0)

    if not k:
        return np.stack(list(restore(iter(frames))))
    out = list(with_detail(restore, fuse_stream(frames, k, opts=opts, noise=True), opts.detail_box))
    # Clipped again: bicubic resampling in the fusion can overshoot [0, 1] a little.
    return np.clip(fuse_clip(out, post_radius(k), opts.after_model()), 0.0, 1.0)
