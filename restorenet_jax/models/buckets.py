"""Size buckets: the few padded image sizes a bucketing `Predictor` compiles programs for.

The rule, per side (height and width independently), for a model that pads its input to a multiple `m` of pixels
(`ModelArch.pad_multiple`, 16 for the 4-level networks):

1. the official padded size is n_m = ceil(n / m) * m;
2. the bucket is the smallest rung of the ladder that is >= n_m. In units of m the ladder is

       1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, ..., 256    (every multiple up to 4, then 4, 5, 6 times powers of two)
       256 + 64 k                                           (k = 1, 2, ...: evenly spaced beyond 256 m)

   which for m = 16 is 16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024, 1280, 1536,
   2048, 2560, 3072, 4096, then every multiple of 1024.

Why this ladder: three rungs per octave (ratios 1.25, 1.2, 1.33) keep the extra padding small while the number of
rungs grows only logarithmically (22 per side up to 4096 px for m = 16), so a service meeting arbitrary sizes compiles
few programs. Common frame sides are rungs or close below one: 1280x720 -> 1280x768, 1920x1080 -> 2048x1280,
640x480 -> 640x512. Below 4 m every multiple of m is a rung (no extra padding where the model's own rounding already
dominates). Beyond 256 m (4096 px) a fixed step of 64 m keeps the absolute waste of very large images bounded, which
matters more there than the handful of extra buckets such rare sizes can create.

Worst-case padding cost, relative to the official padded size n_m (which the exact model computes on anyway):
per side the bucket is < 4/3 n_m (it is at most next_rung / (rung + m) times n_m, and consecutive rungs are at most
4/3 apart); in area < 16/9 (~1.78x) of the official padded area. Beyond 256 m the per-side factor is < 1.25 and falls
towards 1 as images grow.
"""
from __future__ import annotations

# The geometric part of the ladder in units of the pad multiple; beyond its end rungs are LINEAR_STEP apart.
_GEOMETRIC = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256)
_LINEAR_STEP = 64


def _check(n: int, multiple: int) -> None:
    if int(n) < 1:
        raise ValueError(f"image sides must be >= 1, got {n}")
    if int(multiple) < 1:
        raise ValueError(f"the pad multiple must be >= 1, got {multiple}")


def padded_side(n: int, multiple: int) -> int:
    """The official padded size: n rounded up to a multiple of `multiple` (what the exact model computes on)."""
    _check(n, multiple)
    return -(-int(n) // int(multiple)) * int(multiple)


def bucket_side(n: int, multiple: int) -> int:
    """The bucket of one side of `n` pixels: the smallest ladder rung >= the official padded size (module docstring).

    Always a multiple of `multiple`, >= padded_side(n, multiple), and non-decreasing in n."""
    units = padded_side(n, multiple) // int(multiple)
    for rung in _GEOMETRIC:
        if rung >= units:
            return rung * int(multiple)
    beyond = units - _GEOMETRIC[-1]
    return (_GEOMETRIC[-1] + -(-beyond // _LINEAR_STEP) * _LINEAR_STEP) * int(multiple)


def bucket_shape(h: int, w: int, multiple: int) -> tuple[int, int]:
    """(Hb, Wb): the bucket of an h x w image, each side bucketed independently."""
    return bucket_side(h, multiple), bucket_side(w, multiple)


def count_buckets(max_side: int, multiple: int) -> int:
    """How many distinct per-side buckets sides 1..max_side fall into (so at most count_buckets(...)**2 programs
    for images up to max_side x max_side, per batch size)."""
    last = bucket_side(max_side, multiple) // int(multiple)
    geometric = sum(1 for rung in _GEOMETRIC if rung <= last)
    return geometric + max(0, (last - _GEOMETRIC[-1]) // _LINEAR_STEP)
