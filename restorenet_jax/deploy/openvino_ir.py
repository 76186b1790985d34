"""OpenVINO: read the ONNX graph of onnx_graph.py, save it as an IR (model.xml + model.bin), compile it.

Weights stay float32 in the IR (`compress_to_fp16=False`): OpenVINO's default would round them to fp16 and break
the 1e-4 agreement with the JAX model. Compute precision is chosen at compile time instead (`precision_config`).
"""
from __future__ import annotations

import os
from typing import Any


def read_onnx(proto: Any) -> Any:
    """An `openvino.Model` from an `onnx.ModelProto` (in memory: nothing is written)."""
    import openvino as ov

    return ov.Core().read_model(proto.SerializeToString())


def save_openvino(proto: Any, xml_path: str | os.PathLike) -> None:
    """Converts the ONNX graph and writes the IR: `xml_path` and the weights beside it (same stem, .bin)."""
    import openvino as ov

    ov.save_model(read_onnx(proto), str(xml_path), compress_to_fp16=False)


def precision_config(dtype: str) -> dict:
    """Compile settings of the CPU plugin: float32 unless bfloat16 is asked for. OpenVINO itself defaults to bf16
    on CPUs with AVX-512 BF16 or AMX, which would silently change the results (~1e-3). An int8 model runs its
    quantised layers in int8 and the layers kept out of quantisation in bf16 where the CPU has it natively."""
    if dtype == "int8":
        from restorenet_jax.inference.precision import native_bf16

        return {"INFERENCE_PRECISION_HINT": "bf16" if native_bf16() else "f32"}
    return {"INFERENCE_PRECISION_HINT": "bf16" if dtype in ("bfloat16", "bf16") else "f32"}
