"""Restoration methods the footage benchmark compares, behind one interface, and their registry.

A `Method` turns noisy uint8 frames [T, H, W, 3] of one clip into restored frames (uint8, or float in [0, 1]) for
one of its strengths. Kinds:
  ffmpeg   one of ffmpeg's denoisers through a raw-video pipe (temporal ones see the whole clip)
  frames   a single-image restorer applied frame by frame (our model: `restorer_method`)
  clip     any function frames -> frames (`clip_method`): the hook for temporal restorers; our model on frames
           fused with their aligned neighbours (`temporal_restorer_method`, inference/temporal.py) is one

Plugging in a temporal restorer takes a few lines, e.g. in a module of its own:

    from restorenet_jax.bench import footage_methods
    footage_methods.register(footage_methods.clip_method("temporal", my_restore_clip))

or, without code, on the command line: `--clip-method temporal=my_package.my_module:my_restore_clip`
(`my_restore_clip(frames)` gets float32 [T, H, W, 3] in [0, 1], or uint8 with `input_dtype='uint8'`).
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from restorenet_jax.bench import ffmpeg_pipe

FFMPEG_FILTERS = ("hqdn3d", "atadenoise", "nlmeans", "fftdnoiz", "bm3d")
TEMPORAL_FILTERS = frozenset({"hqdn3d", "atadenoise", "fftdnoiz"})  # use neighbouring frames


@dataclasses.dataclass(frozen=True)
class Method:
    """A restoration method.

    Attributes:
      name: column name in the tables.
      kind: 'ffmpeg', 'frames' or 'clip'.
      run: (noisy uint8 [T, H, W, 3], strength) -> restored [T, H, W, 3] (uint8, or float in [0, 1]).
      strengths: options tried; the best (by mean PSNR per setting) is kept. ('',) for a method without any.
      temporal: whether it uses other frames than the one it restores.
      prepare: called with a clip's shape before the timed call (e.g. to compile a model): not timed.
    """

    name: str
    kind: str
    run: Callable[[np.ndarray, str], np.ndarray]
    strengths: tuple[str, ...] = ("",)
    temporal: bool = False
    prepare: Callable[[tuple[int, ...]], None] | None = None


def as_uint8(frames: Any) -> np.ndarray:
    """Restored frames as uint8 (float input is read as [0, 1], clipped and rounded), as a video would carry them."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    return np.round(np.clip(frames.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def ffmpeg_method(name: str, strengths: Sequence[str], fps: int = 25) -> Method:
    """ffmpeg's `name` filter with each option string in `strengths` (e.g. 'sigma=8:prev=1:next=1')."""
    return Method(name=name, kind="ffmpeg", strengths=tuple(strengths), temporal=name in TEMPORAL_FILTERS,
                  run=lambda frames, s: ffmpeg_pipe.apply_filter(frames, f"{name}={s}" if s else name, fps))


def frame_method(name: str, restore_batch: Callable[[np.ndarray], Any], batch: int,
                 prepare: Callable[[tuple[int, ...]], None] | None = None) -> Method:
    """A single-image restorer applied to batches of frames: restore_batch(float32 [B, H, W, 3]) -> [B, H, W, 3].

    The last batch is padded (with its last frame) to `batch` frames, so one compiled program serves every call.
    """
    def run(frames: np.ndarray, strength: str) -> np.ndarray:
        x = frames.astype(np.float32) / 255.0
        out = []
        for i in range(0, len(x), batch):
            chunk = x[i:i + batch]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])
            out.append(np.asarray(restore_batch(padded))[:len(chunk)])
        return as_uint8(np.concatenate(out))

    return Method(name=name, kind="frames", run=run, prepare=prepare)


def restorer_method(restorer: Any, batch: int, name: str = "ours") -> Method:
    """Our model (a `Restorer`) frame by frame; its program for (batch, H, W) is compiled before timing."""
    return frame_method(name, restorer.restore_batch, batch,
                        prepare=lambda shape: restorer.warmup([(batch, shape[1], shape[2])]))


def temporal_restorer_method(restorer: Any, batch: int, k: int, name: str = "ours_temporal") -> Method:
    """Our model on each frame fused with its +-k aligned neighbours (`temporal.restore_clip`, what
    `restore --temporal K` does to a video); alignment and fusion are timed, the compilation is not."""
    from restorenet_jax.inference import temporal

    def run(frames: np.ndarray, strength: str) -> np.ndarray:
        return as_uint8(temporal.restore_clip(restorer.restore_batch, frames, k, batch=batch))

    return Method(name=name, kind="clip", run=run, strengths=(f"k={k}",), temporal=True,
                  prepare=lambda shape: restorer.warmup([(batch, shape[1], shape[2])]))


def clip_method(name: str, fn: Callable[..., Any], strengths: Sequence[str] | None = None,
                input_dtype: str = "float32", temporal: bool = True) -> Method:
    """Wraps a whole-clip restorer, e.g. a temporal one: fn(frames) -> frames, or fn(frames, strength) when
    `strengths` is given.

    Args:
      name: column name.
      fn: gets float32 [T, H, W, 3] in [0, 1] (input_dtype 'float32') or the uint8 frames ('uint8'); returns
        [T, H, W, 3] uint8 or float in [0, 1].
      strengths: option strings passed as fn's second argument; None: fn takes the frames only.
    """
    if input_dtype not in ("float32", "uint8"):
        raise ValueError(f"input_dtype must be 'float32' or 'uint8', got {input_dtype!r}")

    def run(frames: np.ndarray, strength: str) -> np.ndarray:
        x = frames if input_dtype == "uint8" else frames.astype(np.float32) / 255.0
        out = as_uint8(fn(x, strength) if strengths is not None else fn(x))
        if out.shape != frames.shape:
            raise ValueError(f"{name} returned frames of shape {out.shape}, expected {frames.shape}")
        return out

    return Method(name=name, kind="clip", run=run, strengths=tuple(strengths) if strengths else ("",),
                  temporal=temporal)


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Adds a method to the registry `build` draws from (a later one of the same name replaces it)."""
    _REGISTRY[method.name] = method
    return method


def import_clip_method(spec: str) -> Method:
    """'NAME=package.module:function' -> clip_method(NAME, function). Raises ValueError with a one-line reason."""
    name, sep, target = spec.partition("=")
    module, colon, attr = target.partition(":")
    if not (sep and colon and name and module and attr):
        raise ValueError(f"--clip-method must look like NAME=package.module:function, got {spec!r}")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load {target!r} for --clip-method {name}: {e}") from None
    if not callable(fn):
        raise ValueError(f"{target!r} is not callable")
    return clip_method(name, fn)


OURS = ("ours", "ours_temporal")  # our model frame by frame, and on temporally fused frames


def build(names: Sequence[str], strengths: Mapping[str, Sequence[str]], make_ours: Callable[[str], Method] | None,
          fps: int = 25, extra: Sequence[Method] = ()) -> tuple[list[Method], list[dict]]:
    """The methods named, in order, and the ones skipped with their reason.

    Args:
      names: method names: 'ours', 'ours_temporal', ffmpeg filter names, registered or `extra` methods.
      strengths: filter name -> option strings (the config's).
      make_ours: builds our model's method of a name in OURS (None: those are skipped, e.g. no checkpoint).
      extra: methods given on the command line (they win over registered ones of the same name).
    Returns:
      (methods, skipped) where skipped holds {'method': name, 'reason': text}.
    """
    known = {**_REGISTRY, **{m.name: m for m in extra}}
    methods, skipped = [], []
    for name in names:
        if name in known:
            methods.append(known[name])
        elif name in OURS:
            if make_ours is None:
                skipped.append({"method": name, "reason": "no checkpoint given"})
            else:
                methods.append(make_ours(name))
        elif name in FFMPEG_FILTERS:
            if name not in ffmpeg_pipe.available_filters():
                skipped.append({"method": name, "reason": f"this ffmpeg binary has no '{name}' filter"})
            else:
                methods.append(ffmpeg_method(name, strengths[name], fps))
        else:
            raise ValueError(f"unknown method {name!r} (known: {', '.join(OURS + FFMPEG_FILTERS)}"
                             + "".join(f", {k}" for k in known) + ")")
    return methods, skipped
