"""Precision policy: which number format the network computes in (`--precision auto|fp32|bf16|int8`).

    from restorenet_jax.inference.precision import resolve_precision
    p = resolve_precision("auto", engine="openvino")   # Precision('bf16', 'auto: CPU has AVX512_BF16')

`auto` picks the fastest precision the hardware runs natively whose outputs stay close to fp32 (bf16 vs fp32 PSNR
above 45 dB on the demo model and the width-32 Baseline; `python -m restorenet_jax.bench.engines` reports it):
  * bf16 on an accelerator (GPU, TPU), where JAX runs the model;
  * bf16 on a CPU with native bf16 instructions (AVX512_BF16 or AMX) when OpenVINO runs the model; XLA:CPU and
    ONNX Runtime's CPU provider have no fast bf16 kernels, so with them a CPU stays in fp32;
  * fp32 everywhere else.
int8 is never chosen by `auto`: it needs a quantised model (python -m restorenet_jax.export --format openvino
--int8) and changes outputs by more than rounding. `fp32` gives exactly the outputs of the float32 model.

The environment variable RESTORENET_PRECISION sets the default of the commands and of `engines.load_engine`
(the test suite sets fp32, so that exact-output tests stay exact on any machine).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Iterable, Optional

CHOICES = ("auto", "fp32", "bf16", "int8")
ENV = "RESTORENET_PRECISION"
# precision -> the `dtype` the engines take
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "int8": "int8"}
_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "f32": "fp32"}
# /proc/cpuinfo flags that mean bf16 dot products in hardware, best first, with the name printed for them.
_BF16_FLAGS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512_BF16"))


@dataclasses.dataclass(frozen=True)
class Precision:
    """A resolved precision: `name` in fp32 | bf16 | int8, and `reason` ('asked', or why `auto` chose it)."""

    name: str
    reason: str = "asked"

    @property
    def dtype(self) -> str:
        """The engines' dtype string: float32 | bfloat16 | int8."""
        return DTYPES[self.name]

    def describe(self, engine: str) -> str:
        """'engine openvino, precision bf16 (auto: CPU has AVX512_BF16)': the line the commands print once."""
        return f"engine {engine}, precision {self.name} ({self.reason})"

    def record(self) -> dict:
        """What reports and the service's info carry."""
        return {"precision": self.name, "precision_reason": self.reason}


def normalize(name: str) -> str:
    """'bfloat16' -> 'bf16', 'float32' -> 'fp32'; raises ValueError for anything not in CHOICES."""
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in CHOICES:
        raise ValueError(f"unknown precision {name!r}; expected one of {', '.join(CHOICES)}")
    return key


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (Linux); empty where they cannot be read."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(flags: Optional[Iterable[str]] = None) -> Optional[str]:
    """The name of the CPU's native bf16 unit ('AMX' or 'AVX512_BF16'), or None without one."""
    flags = cpu_flags() if flags is None else set(flags)
    return next((label for flag, label in _BF16_FLAGS if flag in flags), None)


def default_precision() -> str:
    """The default of --precision: RESTORENET_PRECISION when set, else 'auto'."""
    return normalize(os.environ.get(ENV, "auto") or "auto")


def resolve_precision(requested: Optional[str], engine: str, backend: Optional[str] = None,
                      flags: Optional[Iterable[str]] = None) -> Precision:
    """The precision to run `engine` ('jax' | 'onnxruntime' | 'openvino', already resolved) with.

    Args:
      requested: one of CHOICES (or float32/bfloat16); None means `default_precision()`.
      backend: JAX's backend ('cpu', 'gpu', 'tpu'); None asks JAX (only when the engine is 'jax').
      flags: CPU flags (tests patch them); None reads /proc/cpuinfo.
    """
    name = default_precision() if requested is None else normalize(requested)
    if name != "auto":
        return Precision(name, "asked" if requested is not None else f"{ENV}={name}")
    if engine == "jax":
        if backend is None:
            import jax

            backend = jax.default_backend()
        if backend != "cpu":
            return Precision("bf16", f"auto: {backend.upper()}")
        return Precision("fp32", "auto: XLA:CPU has no fast bf16 path")
    if engine == "onnxruntime":
        return Precision("fp32", "auto: ONNX Runtime's CPU provider computes fp32 only")
    unit = native_bf16(flags)
    if unit:
        return Precision("bf16", f"auto: CPU has {unit}")
    return Precision("fp32", "auto: CPU has no native bf16")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """Adds --precision (default: RESTORENET_PRECISION or auto) and --bf16, kept as an alias of --precision bf16."""
    try:
        default = default_precision()
    except ValueError:
        default = "auto"
    parser.add_argument("--precision", default=default, type=normalize, choices=CHOICES, metavar="{" +
                        ",".join(CHOICES) + "}",
                        help="number format of the computation: auto = the fastest the hardware runs natively with "
                        "outputs close to fp32 (bf16 on GPUs/TPUs and on CPUs with AVX512_BF16 or AMX under "
                        "OpenVINO, else fp32); fp32 = exact float32 outputs; int8 = the OpenVINO int8 model made by "
                        f"`export --format openvino --int8` (default: {default}; env {ENV})")
    parser.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                        help="same as --precision bf16")
