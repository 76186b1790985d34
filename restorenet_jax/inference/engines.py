"""Inference engines: the same model run by JAX, ONNX Runtime or OpenVINO behind one interface.

    from restorenet_jax.inference.engines import load_engine
    engine = load_engine("models/restorenet", engine="auto")   # 'jax' | 'onnxruntime' | 'openvino' | 'auto'
    y = engine(x)                                               # float32 [H, W, 3] in [0, 1] -> [H, W, 3]

Every engine offers what restore, evaluate and serve use from `Predictor`: `__call__(x, clip)`, `restore_batch`,
`compare_stacked` / `compare` / `methods`, `warmup`, `arch`, `dtype`; so pre- and post-processing, padding (inside
each model), tiling and outputs are the same code whatever runs the network. The ONNX Runtime and OpenVINO engines
run the graph of `deploy.onnx_graph`, built in memory from the checkpoint's parameters (nothing is written).

`auto` picks the fastest engine for the device: JAX on an accelerator (GPU, TPU); on a CPU OpenVINO when it is
installed, else ONNX Runtime, else JAX (bench/results/*engines* has the measurements behind this order). OpenVINO
and ONNX Runtime are optional: `pip install 'restorenet-jax[deploy]'`.

Shapes (OpenVINO): by default one program is compiled per input shape (static shapes run about twice as fast on
the CPU plugin, and a video's frames share one shape), at most `max_programs` kept. A service meeting arbitrary sizes
uses `dynamic_shapes=True` instead: one dynamic-shape program runs every size with no compile per new size, and its
memory stays flat however many sizes arrive (compiling per size costs ~1 s each and the held programs' buffers sum
to hundreds of MB that rise and fall with the sizes held). In bf16 the two compute the same graph with different
kernels: outputs differ by up to ~0.01 (equally far from the float32 result); in float32 both equal JAX to ~1e-6.

The precision (`inference.precision`) is resolved with the engine: `load_engine(..., precision="auto")` runs bf16
where the hardware has it natively, `"int8"` runs the quantised OpenVINO model cached beside the checkpoint
(`deploy.quantize`). The engine's `precision` attribute says what was chosen and why.
"""
from __future__ import annotations

import collections
import importlib.util
import os
import threading
from typing import Any, Iterable, Mapping

import numpy as np

from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.predictor import split_methods

ENGINES = ("jax", "onnxruntime", "openvino")
CHOICES = ("auto", *ENGINES)
# Python packages each graph engine needs (the ONNX graph is built with `onnx`).
_NEEDS = {"onnxruntime": ("onnx", "onnxruntime"), "openvino": ("onnx", "openvino")}
INSTALL_HINT = "pip install 'restorenet-jax[deploy]'"
# Shapes whose kernels a dynamic-shape OpenVINO program keeps (CPU_RUNTIME_CACHE_CAPACITY): repeated sizes hit it, and
# a stream of new sizes costs a bounded amount of memory.
RUNTIME_CACHE = 16


class EngineUnavailable(ValueError):
    """The engine asked for is not installed, or cannot run the requested precision."""


def installed(engine: str) -> bool:
    """Whether `engine`'s packages are importable (JAX always is)."""
    def found(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or blocked install counts as missing
            return False

    return all(found(p) for p in _NEEDS.get(engine, ()))


def default_engine(backend: str | None = None) -> str:
    """The engine `auto` means here: JAX on an accelerator; OpenVINO, else ONNX Runtime, else JAX on a CPU."""
    if backend is None:
        import jax

        backend = jax.default_backend()
    if backend != "cpu":
        return "jax"
    return next((e for e in ("openvino", "onnxruntime") if installed(e)), "jax")


def resolve_engine(name: str, dtype: str = "float32") -> str:
    """The concrete engine for `name` (CHOICES); raises EngineUnavailable with an install hint."""
    if name not in CHOICES:
        raise EngineUnavailable(f"unknown engine {name!r}; expected one of {', '.join(CHOICES)}")
    engine = default_engine() if name == "auto" else name
    if engine == "onnxruntime" and dtype in ("bfloat16", "bf16"):
        if name == "auto":
            return "jax"
        raise EngineUnavailable("onnxruntime runs float32 only: drop --bf16, or use --engine openvino or jax")
    if dtype == "int8":
        if name == "auto":
            engine = "openvino"
        if engine != "openvino":
            raise EngineUnavailable(f"int8 runs on OpenVINO only, not {engine}: use --engine openvino or auto")
    if not installed(engine):
        raise EngineUnavailable(f"engine {engine!r} is not installed: {INSTALL_HINT}")
    return engine


def auto_reason(engine: str, precision: str, backend: str | None = None) -> str:
    """Why `auto` resolved to `engine` ('auto: ...'), for the line the commands print; `precision` as asked."""
    if precision == "int8":
        return "auto: int8 runs on OpenVINO"
    if engine == "openvino":
        return "auto: CPU, OpenVINO installed"
    if engine == "onnxruntime":
        return "auto: CPU, OpenVINO not installed"
    if backend is None:
        import jax

        backend = jax.default_backend()
    if backend != "cpu":
        return f"auto: {backend.upper()}"
    if precision == "bf16" and installed("onnxruntime"):
        return "auto: bf16 asked, ONNX Runtime computes fp32 only"
    return f"auto: CPU without OpenVINO or ONNX Runtime ({INSTALL_HINT} adds them)"


def describe(engine: Any) -> str:
    """The one line the commands print about a loaded engine: what runs the model and in what precision, each with
    why `auto` chose it, e.g. 'engine openvino (auto: CPU, OpenVINO installed), precision bf16 (auto: CPU has
    AVX512_BF16)'."""
    line = engine.precision.describe(engine.engine)
    reason = getattr(engine, "engine_reason", "asked")
    return line if reason == "asked" else line.replace(f"engine {engine.engine},",
                                                       f"engine {engine.engine} ({reason}),", 1)


class GraphEngine:
    """ONNX Runtime or OpenVINO running the model's ONNX graph, with `Predictor`'s interface.

    Attributes:
      arch: the architecture (its `tlc` as used here); dtype: 'float32' or 'bfloat16' (OpenVINO only).
      engine: 'onnxruntime' or 'openvino'.
      compiles: programs compiled so far (OpenVINO compiles one per input shape, at most `max_programs` kept).
      dynamic: OpenVINO only: run every shape with one dynamic-shape program (module docstring, "Shapes").
    Thread-safe: serve calls it from several worker threads.
    """

    def __init__(self, arch: ModelArch, params: Mapping[str, Any], engine: str, dtype: str = "float32", *,
                 max_programs: int = 8, threads: int = 0, int8_model: str | os.PathLike | None = None,
                 dynamic: bool = False, runtime_cache: int = RUNTIME_CACHE):
        if engine not in _NEEDS:
            raise ValueError(f"GraphEngine runs 'onnxruntime' or 'openvino', not {engine!r}")
        if dtype not in ("float32", "fp32", "bfloat16", "bf16", "int8"):
            raise ValueError(f"dtype must be float32, bfloat16 or int8, not {dtype!r}")
        if engine == "onnxruntime" and dtype in ("bfloat16", "bf16", "int8"):
            raise EngineUnavailable("onnxruntime runs float32 only")
        if (dtype == "int8") != (int8_model is not None):
            raise ValueError("an int8 engine needs its quantised model (int8_model), and only it does")
        self.int8_model = None if int8_model is None else str(int8_model)
        from restorenet_jax.inference.precision import Precision, normalize

        self.precision = Precision(normalize(dtype))  # load_engine replaces it with the resolved one (and why)
        import jax

        self.arch, self.engine, self.dtype = arch, engine, dtype
        self.max_programs, self.threads = int(max_programs), int(threads)
        self.dynamic, self.runtime_cache = bool(dynamic) and engine == "openvino", int(runtime_cache)
        self._dynamic: dict[bool, Any] = {}  # OpenVINO, dynamic: compare flag -> (program, its idle infer requests)
        self._dynamic_lock = threading.Lock()
        self.compiles = 0
        self._params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), dict(params))
        self._lock = threading.Lock()
        self._graphs: dict[bool, Any] = {}  # compare flag -> runtime-side model (ORT session or ov.Model)
        self._compiled: collections.OrderedDict = collections.OrderedDict()  # OpenVINO: (compare, shape) -> model

    @property
    def params(self) -> dict:
        """The parameter tree the graphs are built from (host float32 arrays)."""
        return self._params

    @property
    def methods(self) -> tuple[str, ...]:
        """The names `compare` returns (as `Predictor.methods`)."""
        from restorenet_jax.deploy.onnx_graph import METHODS

        return METHODS[self.arch.kind]

    def _graph(self, compare: bool) -> Any:
        if self.int8_model is not None:
            if compare:
                raise EngineUnavailable("the int8 model outputs the restored image only (no compared methods): "
                                        "use --precision fp32 or bf16")
            with self._lock:
                if compare not in self._graphs:
                    import openvino as ov

                    self._graphs[compare] = ov.Core().read_model(self.int8_model)
                return self._graphs[compare]
        with self._lock:
            if compare not in self._graphs:
                from restorenet_jax.deploy.onnx_graph import build_onnx

                proto = build_onnx(self.arch, self._params, compare=compare)
                self._graphs[compare] = self._load(proto)
            return self._graphs[compare]

    def _load(self, proto: Any) -> Any:
        if self.engine == "openvino":
            from restorenet_jax.deploy.openvino_ir import read_onnx

            return read_onnx(proto)
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        self.compiles += 1
        return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def _openvino_program(self, compare: bool, shape: tuple[int, ...], static: bool = False) -> Any:
        """A compiled OpenVINO model for one input shape: static shapes run faster on the CPU plugin than a
        dynamic model, and frames of a video or tiles share one shape. Least recently used dropped first.
        A `dynamic` engine compiles static programs only when asked (`static`, from `warmup`) and runs every other
        shape with its one dynamic-shape program."""
        key = (compare, shape)
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
        if self.dynamic and not static:
            return self._dynamic_program(compare)
        import openvino as ov

        from restorenet_jax.deploy.openvino_ir import precision_config

        model = self._graph(compare).clone()
        model.reshape(list(shape))
        config = precision_config(self.dtype)
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        compiled = (ov.Core().compile_model(model, "CPU", config), [])  # (program, its idle infer requests)
        with self._lock:
            self._compiled[key] = compiled
            self.compiles += 1
            while len(self._compiled) > self.max_programs:
                self._compiled.popitem(last=False)
        return compiled

    def _dynamic_program(self, compare: bool) -> Any:
        """The one dynamic-shape OpenVINO program (per `compare` flag), compiled on first use. Its shape-specific
        kernels are cached by the CPU plugin in a cache bounded to `runtime_cache` shapes (OpenVINO's default keeps
        5000, each a few MB, so a service meeting new sizes would grow by that much per size)."""
        with self._dynamic_lock:
            if compare not in self._dynamic:
                import openvino as ov

                from restorenet_jax.deploy.openvino_ir import precision_config

                model = self._graph(compare).clone()
                model.reshape(ov.PartialShape("[?,3,?,?]"))
                config = precision_config(self.dtype)
                config["CPU_RUNTIME_CACHE_CAPACITY"] = str(self.runtime_cache)
                if self.threads:
                    config["INFERENCE_NUM_THREADS"] = self.threads
                self._dynamic[compare] = (ov.Core().compile_model(model, "CPU", config), [])
                with self._lock:
                    self.compiles += 1
            return self._dynamic[compare]

    def _run(self, x: np.ndarray, compare: bool = False) -> np.ndarray:
        """[B, H, W, 3] float32 -> [B, H, W, C] float32 numpy (raw model output)."""
        x = np.asarray(x, np.float32)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected a batch of shape [B, H, W, 3], got {x.shape}")
        nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        if self.engine == "onnxruntime":
            y = self._graph(compare).run(None, {"image": nchw})[0]
        else:
            compiled, idle = self._openvino_program(compare, nchw.shape)
            # An infer request serves one call at a time: each call takes an idle one (or makes one) and returns it.
            with self._lock:
                request = idle.pop() if idle else None
            request = request or compiled.create_infer_request()
            try:
                y = np.array(request.infer({0: nchw})[0])  # a copy: the request reuses its output buffer
            finally:
                with self._lock:
                    idle.append(request)
        return np.ascontiguousarray(np.asarray(y, np.float32).transpose(0, 2, 3, 1))

    def restore_batch(self, x: np.ndarray) -> np.ndarray:
        """[B, H, W, 3] -> raw model output [B, H, W, 3] float32 (not clipped)."""
        return self._run(x)

    def __call__(self, x: np.ndarray, clip: bool = True) -> np.ndarray:
        """One image: float32 [H, W, 3] in [0, 1] -> [H, W, 3], clipped to [0, 1] unless `clip` is False."""
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"expected an image of shape [H, W, 3], got {x.shape}")
        y = self._run(x[None])[0]
        return np.clip(y, 0.0, 1.0) if clip else y

    def compare_stacked(self, x: np.ndarray) -> np.ndarray:
        """[H, W, 3] -> [H, W, 3 * len(methods)]: every method's raw output (as `Predictor.compare_stacked`)."""
        return self._run(np.asarray(x, np.float32)[None], compare=True)[0]

    def compare(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every method's raw output on one image {method: [H, W, 3]}."""
        return split_methods(self.compare_stacked(x), self.methods)

    def warmup(self, shapes: Iterable[tuple[int, ...]], compare: bool = False) -> None:
        """Builds (and for OpenVINO compiles) ahead of time what inputs of these (h, w) or (b, h, w) sizes use; a
        `dynamic` engine compiles static programs for them (at most `max_programs` kept), faster than its dynamic
        one."""
        for shape in shapes:
            b, h, w = (1, *shape) if len(shape) == 2 else shape
            if self.engine == "openvino":
                self._openvino_program(compare, (int(b), 3, int(h), int(w)), static=True)
            self._run(np.zeros((int(b), int(h), int(w), 3), np.float32), compare)


def load_engine(path: str | os.PathLike, engine: str = "auto", tlc: bool | None = None, dtype: str | None = None,
                *, precision: str | None = None, bucketing: bool = False, max_programs: int = 8,
                dynamic_shapes: bool = False, **select: Any) -> Any:
    """Loads a converted model directory or a training workdir into the engine asked for.

    Args:
      path: as `Restorer.from_checkpoint` (model directory, or training workdir with `which='latest'|'best'`).
      engine: one of CHOICES ('auto': module docstring).
      tlc: None keeps the checkpoint's TLC setting; True/False overrides it.
      dtype: 'float32' or 'bfloat16' (kept for callers from before `precision`; it wins when given).
      precision: 'auto' | 'fp32' | 'bf16' | 'int8' (`inference.precision`); None: RESTORENET_PRECISION or auto.
      bucketing, max_programs: the JAX engine's size buckets and compiled-program bound (see `Predictor`);
        OpenVINO keeps at most `max_programs` compiled shapes; ONNX Runtime runs every shape with one session.
      dynamic_shapes: OpenVINO runs every size with one dynamic-shape program (`GraphEngine.dynamic`) instead of
        compiling one per size; only `warmup` sizes get static programs. Ignored by the other engines.
    Returns:
      The engine; its `engine` attribute names what runs the model, `engine_reason` why ('asked', or what `auto`
      went by), and `precision` (a `precision.Precision`) what it computes in and why (`describe` prints both).
    Raises:
      EngineUnavailable (a ValueError) when the engine is not installed, cannot run the precision, or the int8 model
      was not exported; ModelDirError for a bad checkpoint.
    """
    from restorenet_jax.inference import precision as prec

    requested = prec.normalize(dtype) if dtype is not None else (
        prec.normalize(precision) if precision is not None else prec.default_precision())
    # The engine first (auto may pick JAX for bf16, OpenVINO for int8), then what `auto` precision means on it.
    name = resolve_engine(engine, prec.DTYPES.get(requested, "float32"))
    chosen = prec.resolve_precision(requested, name)
    reason = auto_reason(name, requested) if engine == "auto" else "asked"
    if chosen.name == "bf16" and name == "onnxruntime":
        raise EngineUnavailable("onnxruntime runs float32 only: use --precision fp32, or --engine openvino or jax")
    if name == "jax":
        from restorenet_jax.inference.restorer import Restorer

        restorer = Restorer.from_checkpoint(path, tlc=tlc, dtype=chosen.dtype, bucketing=bucketing,
                                            max_programs=max_programs, **select)
        restorer.engine, restorer.precision, restorer.engine_reason = "jax", chosen, reason
        return restorer
    from restorenet_jax.training.checkpoints import resolve_model

    arch, params = resolve_model(path, **select)
    if tlc is not None:
        arch = arch.replace(tlc=bool(tlc))
    int8_model = None
    if chosen.name == "int8":
        from restorenet_jax.deploy import quantize

        try:
            int8_model = quantize.cached_model(path, arch, params, which=select.get("which", "latest"))
        except quantize.NoInt8Model as e:
            raise EngineUnavailable(str(e)) from None
    out = GraphEngine(arch, params, name, chosen.dtype, max_programs=max_programs, int8_model=int8_model,
                      dynamic=dynamic_shapes)
    out.precision, out.engine_reason = chosen, reason
    return out
