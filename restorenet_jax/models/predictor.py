"""`Predictor`: a model's compiled forward pass, its parameters placed on the device once.

Every prediction in the project goes through this class: training's periodic evaluation and final report, the
evaluate command (all compared methods in one pass), `Restorer` (restore, serve). Parameters are arguments of the
compiled programs, so swapping them (a new training step's parameters) neither re-traces nor re-uploads anything
when they already live on the device.

Compiled programs live in a bounded LRU cache (`max_programs`), so a long-running service that meets many image
sizes holds a bounded amount of compiled code. By default there is one program per exact input shape. With
`bucketing=True` inputs are zero-padded to a size bucket (models/buckets.py) and the model is told the official
padded size as a runtime argument (`valid`, see models/baseline.py), so one program serves every size in its bucket
and gives exactly the exact-shape result. Bucketing needs a model that supports `valid` (no TLC, RestoreNet only with
the 'baseline' extra network); other models fall back to exact shapes (`bucketing` then reads False), still bounded.
"""
from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Hashable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.buckets import bucket_shape, padded_side
from restorenet_jax.models.restorenet import build_model, supports_valid

DTYPES = {"float32": jnp.float32, "fp32": jnp.float32, "bfloat16": jnp.bfloat16, "bf16": jnp.bfloat16}


class ProgramCache:
    """At most `capacity` compiled programs, least recently used evicted first; thread-safe.

    `get` builds a missing program outside the cache's lock, so callers whose program is already built never wait
    for someone else's compile; callers asking for a program being built wait for that one build (one compile per
    key). An evicted program is dropped from the cache at once and freed when no running call still uses it.
    """

    class _Slot:
        def __init__(self):
            self.done = threading.Event()
            self.program: Any = None
            self.error: BaseException | None = None

    def __init__(self, capacity: int):
        if int(capacity) < 1:
            raise ValueError(f"max_programs must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.compiles = 0
        self._lock = threading.Lock()
        self._slots: collections.OrderedDict[Hashable, ProgramCache._Slot] = collections.OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The program for `key`, built by `build()` if no one has it (or is building it)."""
        with self._lock:
            slot = self._slots.get(key)
            owner = slot is None
            if owner:
                slot = self._slots[key] = ProgramCache._Slot()
                while len(self._slots) > self.capacity:
                    self._slots.popitem(last=False)
            else:
                self._slots.move_to_end(key)
        if not owner:
            slot.done.wait()
            if slot.error is not None:
                raise slot.error
            return slot.program
        try:
            slot.program = build()
        except BaseException as e:
            slot.error = e
            with self._lock:  # a failed build is not cached: the next caller tries again
                if self._slots.get(key) is slot:
                    del self._slots[key]
            raise
        finally:
            slot.done.set()
        with self._lock:
            self.compiles += 1
        return slot.program

    def __len__(self) -> int:
        """Programs held now (built, not evicted)."""
        with self._lock:
            return sum(1 for s in self._slots.values() if s.done.is_set() and s.error is None)

    def clear(self) -> None:
        """Drops every program."""
        with self._lock:
            self._slots.clear()


def cast_conv_weights(params: Any, dtype: Any) -> Any:
    """`params` with every convolution's kernel and bias already in the compute `dtype` (other leaves unchanged).

    The convolutions cast their float32 weights to the compute dtype on every call; casting them once here gives
    the same values, so outputs are bit for bit the same, and saves those casts: measured on an H200, GoPro-w64 bf16
    at 720p 20.0 -> 19.6 ms (216 casts per call). LayerNorm ('norm*' modules) and the block scales (beta, gamma)
    compute in float32 and keep their float32 values.
    """
    if jnp.dtype(dtype) == jnp.float32:
        return params

    def cast(path, leaf):
        names = [str(getattr(k, "key", k)) for k in path]
        is_conv = names[-1] in ("kernel", "bias") and not any(n.startswith("norm") for n in names)
        return leaf.astype(dtype) if is_conv and leaf.dtype == jnp.float32 else leaf

    return jax.tree_util.tree_map_with_path(cast, params)


class Predictor:
    """A model ready to predict.

    Construct as `Predictor(arch, params, dtype='float32', bucketing=False, max_programs=8)`.

    Attributes:
      arch: the architecture (its `tlc` as used here).
      dtype: the compute dtype name (parameters stay float32).
      params: the parameter tree, as device arrays.
      bucketing: whether inputs are padded to size buckets (False when asked for but the model cannot do it).
      max_programs: how many compiled programs are kept (least recently used evicted first).
      traces: how many times a forward pass has been traced (once per compiled program): a cheap check that
        repeated calls reuse the compiled program.
      compiles, programs: programs compiled so far, and held now.

    Several threads may predict at once; a thread compiling a new shape does not hold up calls on compiled ones.
    """

    def __init__(self, arch: ModelArch, params: Mapping[str, Any], dtype: str = "float32", *,
                 bucketing: bool = False, max_programs: int = 8):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
        self.arch = arch
        self.dtype = dtype
        self.model = build_model(arch, dtype=DTYPES[dtype])
        self.bucketing = bool(bucketing) and supports_valid(arch)
        self.traces = 0
        self._traces_lock = threading.Lock()
        self._cache = ProgramCache(max_programs)
        self._placed: tuple[Any, Any, Hashable] = (None, None, None)
        self.set_params(params)

    @property
    def params(self) -> Any:
        """The parameter tree predictions use (device arrays)."""
        return self._placed[0]

    @property
    def max_programs(self) -> int:
        """How many compiled programs are kept (least recently used evicted first)."""
        return self._cache.capacity

    @property
    def compiles(self) -> int:
        """Programs compiled so far (a program compiled again after its eviction counts again)."""
        return self._cache.compiles

    @property
    def programs(self) -> int:
        """Compiled programs held now (at most max_programs)."""
        return len(self._cache)

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Predicts with `params` from now on: host arrays are uploaded once; device arrays (e.g. a training
        state's, replicated or sharded) are used where they are, without a copy. Parameters of the same shapes and
        placement reuse the compiled programs."""
        placed = jax.tree_util.tree_map(local_array, dict(params))
        compute = cast_conv_weights(placed, DTYPES[self.dtype])
        leaves, treedef = jax.tree_util.tree_flatten(compute)
        # Programs are compiled for the parameters' shapes and placement: part of every program's key.
        signature = (treedef, tuple((a.shape, a.dtype, a.sharding) for a in leaves))
        self._placed = (placed, compute, signature)  # one assignment: a concurrent call sees old or new, never a mix

    def restore_batch(self, x: np.ndarray | jax.Array) -> jax.Array:
        """[B, H, W, 3] -> raw model output [B, H, W, 3] float32 (a device array, not clipped).

        With bucketing, host inputs are zero-padded on the host; the crop back to [H, W] (and a device input's
        padding) are small eager ops, which JAX caches per shape in its own bounded caches."""
        y, (h, w) = self._run("forward", x)
        return y if y.shape[1:3] == (h, w) else y[:, :h, :w]

    def __call__(self, x: np.ndarray, clip: bool = True) -> np.ndarray:
        """Restores one image.

        Args:
          x: float32 [H, W, 3] in [0, 1], any H, W >= 1.
          clip: clip the output to [0, 1]; False returns the raw model output.
        Returns:
          float32 numpy [H, W, 3].
        """
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"expected an image of shape [H, W, 3], got {x.shape}")
        y, (h, w) = self._run("forward", x[None].astype(np.float32))
        y = np.asarray(y)[0, :h, :w]  # cropped on the host: no per-size slicing program on the device
        return np.clip(y, 0.0, 1.0) if clip else y

    def warmup(self, shapes: Iterable[tuple[int, ...]], compare: bool = False) -> None:
        """Compiles ahead of time the programs that inputs of these sizes will use.

        Args:
          shapes: (h, w) (batch 1) or (b, h, w) each; with bucketing, sizes sharing a bucket share one program.
            Only the last `max_programs` distinct programs stay held.
          compare: compile `compare`'s programs instead of `restore_batch`'s.
        """
        tag = "compare" if compare else "forward"
        for shape in shapes:
            b, h, w = (1, *shape) if len(shape) == 2 else shape
            self._program(tag, int(b), int(h), int(w))

    @property
    def methods(self) -> tuple[str, ...]:
        """The names `compare` returns: every way this checkpoint can be scored."""
        return {"baseline": ("model",), "serial": ("deblur", "denoise", "serial"),
                "restorenet": ("deblur", "denoise", "serial", "restorenet")}[self.arch.kind]

    def compare_stacked(self, x: np.ndarray) -> np.ndarray:
        """[H, W, 3] -> [H, W, 3 * len(methods)]: every method's raw output, stacked along channels (one pass;
        tiling can blend it as one image)."""
        x = np.asarray(x, np.float32)
        y, (h, w) = self._run("compare", x[None])
        return np.asarray(y)[0, :h, :w]

    def compare(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every method's raw output on one image {method: [H, W, 3]}, each backbone run once (RestoreNet: the
        deblur and denoise backbones alone, serial deblur(denoise(x)) and RestoreNet)."""
        return split_methods(self.compare_stacked(x), self.methods)

    # Compiled programs.

    def _run(self, tag: str, x: np.ndarray | jax.Array) -> tuple[jax.Array, tuple[int, int]]:
        """Runs `tag`'s program on [B, H, W, 3]; returns its (possibly bucket-sized) output and the true (H, W)."""
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected a batch of shape [B, H, W, 3], got {x.shape}")
        b, h, w = (int(s) for s in x.shape[:3])
        params, program, valid, (hp, wp) = self._program(tag, b, h, w)
        x = jnp.asarray(x, jnp.float32) if isinstance(x, jax.Array) else np.asarray(x, np.float32)
        if valid is None:
            return program(params, x), (h, w)
        return program(params, _pad_bottom_right(x, hp, wp), valid), (h, w)

    def _program(self, tag: str, b: int, h: int, w: int) -> tuple[Any, Any, np.ndarray | None, tuple[int, int]]:
        """(params, compiled program, its `valid` argument or None, its input's (H, W)) for [b, h, w, 3] inputs."""
        _, params, signature = self._placed
        bucketed, valid = self.bucketing, None
        if bucketed:
            m = self.arch.pad_multiple
            valid = np.array([padded_side(h, m), padded_side(w, m)], np.int32)
            h, w = bucket_shape(h, w, m)
        key = (tag, b, h, w, bucketed, signature)
        program = self._cache.get(key, lambda: self._compile(tag, (b, h, w), params, bucketed))
        return params, program, valid, (h, w)

    def _compile(self, tag: str, shape: tuple[int, int, int], params: Any, bucketed: bool) -> Any:
        """Traces, lowers and compiles one program for float32 inputs of `shape` (+ 3 channels).

        A fresh function per program: JAX's own trace and lowering caches are keyed (weakly) on the function, so
        they let go of a program's intermediates once the program is evicted."""
        fn = self._forward_fn if tag == "forward" else self._comparison

        def program(p, x, *valid):
            with self._traces_lock:
                self.traces += 1  # runs only while tracing, never when a compiled program is reused
            return fn(p, x, *valid)

        args = [params, jax.ShapeDtypeStruct((*shape, 3), jnp.float32)]
        if bucketed:
            args.append(jax.ShapeDtypeStruct((2,), jnp.int32))
        return jax.jit(program).lower(*args).compile()

    def _forward_fn(self, params: Any, x: jax.Array, valid: jax.Array | None = None) -> jax.Array:
        return self.model.apply({"params": params}, x, valid)

    def _comparison(self, params: Any, x: jax.Array, valid: jax.Array | None = None) -> jax.Array:
        if self.arch.kind == "baseline":
            return self.model.apply({"params": params}, x, valid)
        out = self.model.apply({"params": params}, x, valid, method="comparison")
        return jnp.concatenate([out[m] for m in self.methods], axis=-1)


def _pad_bottom_right(x: np.ndarray | jax.Array, h: int, w: int) -> np.ndarray | jax.Array:
    """Zero-pads [B, H, W, C] to [B, h, w, C] (bottom/right), on the host for host arrays."""
    if x.shape[1:3] == (h, w):
        return x
    pad = ((0, 0), (0, h - x.shape[1]), (0, w - x.shape[2]), (0, 0))
    return jnp.pad(x, pad) if isinstance(x, jax.Array) else np.pad(x, pad)


def local_array(a: Any) -> jax.Array:
    """A parameter as an array this process can compute with, copied only when it must be. Collective for an
    array sharded across processes (every process must call it)."""
    if not isinstance(a, jax.Array):
        return jax.device_put(np.asarray(a))
    if a.is_fully_addressable:
        return a
    if a.is_fully_replicated:  # a multi-process replicated parameter: this process's own copy
        return a.addressable_data(0)
    from jax.experimental import multihost_utils  # sharded over processes: every process gathers it

    return jax.device_put(np.asarray(multihost_utils.process_allgather(a, tiled=True)))


def split_methods(stacked: np.ndarray, methods: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Undoes `compare_stacked`'s channel stacking."""
    return {m: stacked[..., 3 * i: 3 * i + 3] for i, m in enumerate(methods)}
