"""An ONNX graph of any model kind, written directly from its Flax parameters.

The graph is NCHW float32: input `image` [N, 3, H, W], output `restored` [N, 3, H, W] (with `compare=True`:
[N, 3 * len(methods), H, W], every method's output stacked along channels in `METHODS[kind]` order, as
`Predictor.compare_stacked`). H and W are dynamic unless `size` fixes them; the graph pads to the model's multiple
(zero, bottom/right) and crops back itself, so it takes any size, like the JAX model.

Why written by hand rather than traced: the architecture is a handful of operators (conv, channel LayerNorm, GELU,
channel attention, pixel shuffle, add/mul), and emitting them directly gives the NCHW graph ONNX runtimes and
OpenVINO are fastest on (the same operators the official PyTorch model exports to), keeps H and W dynamic even with
TLC pooling (its window depends on the map size: computed in the graph from `Shape`), and needs only the small `onnx`
package. The price is a second description of the architecture, held to the JAX model by tests/test_export.py
(every kind, TLC on and off, odd sizes, 1e-4).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from restorenet_jax.models.arch import BaselineArch, ExtraArch, ModelArch
from restorenet_jax.models.layers import tlc_kernel_size

OPSET = 17  # ReduceMean still takes `axes` as an attribute; every operator used here exists since opset 11-13
INPUT, OUTPUT = "image", "restored"
METHODS = {"baseline": ("model",), "serial": ("deblur", "denoise", "serial"),
           "restorenet": ("deblur", "denoise", "serial", "restorenet")}
_LN_EPS = 1e-6


class _Graph:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, value: Any, dtype: Any = np.float32, name: str | None = None) -> str:
        name = name or self._name("const")
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(list(values), np.int64)

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        out = self._name(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


class _Builder:
    """Emits the networks of models/baseline.py and models/restorenet.py operator by operator (NCHW)."""

    def __init__(self, graph: _Graph, arch: ModelArch):
        self.g, self.arch = graph, arch

    # Layers.

    def conv(self, x: str, p: Mapping[str, Any], name: str, stride: int = 1, pad: int | None = None,
             groups: int = 1) -> str:
        kernel = np.asarray(p["kernel"], np.float32)  # Flax [kh, kw, in/groups, out] -> ONNX [out, in/groups, kh, kw]
        kh = kernel.shape[0]
        pad = (kh - 1) // 2 if pad is None else pad
        inputs = [x, self.g.const(kernel.transpose(3, 2, 0, 1), name=f"{name}/kernel")]
        if "bias" in p:
            inputs.append(self.g.const(p["bias"], name=f"{name}/bias"))
        return self.g.op("Conv", *inputs, kernel_shape=[kh, kh], strides=[stride, stride], pads=[pad] * 4,
                         group=groups)

    def conv_transpose(self, x: str, p: Mapping[str, Any], name: str) -> str:
        """Flax ConvTranspose 2x2 stride 2 ('SAME', transpose_kernel=False): an ONNX ConvTranspose whose weight is
        the Flax kernel [kh, kw, in, out] as [in, out, kh, kw], spatially flipped (Flax does not flip it)."""
        kernel = np.asarray(p["kernel"], np.float32)[::-1, ::-1].transpose(2, 3, 0, 1)
        return self.g.op("ConvTranspose", x, self.g.const(np.ascontiguousarray(kernel), name=f"{name}/kernel"),
                         self.g.const(p["bias"], name=f"{name}/bias"), kernel_shape=[2, 2], strides=[2, 2])

    def channel_param(self, value: Any, name: str) -> str:
        return self.g.const(np.asarray(value, np.float32).reshape(1, -1, 1, 1), name=name)

    def layer_norm(self, x: str, p: Mapping[str, Any], name: str) -> str:
        g = self.g
        mu = g.op("ReduceMean", x, axes=[1], keepdims=1)
        d = g.op("Sub", x, mu)
        # Pow(d, 2) as PyTorch exports it: graph optimisers (OpenVINO's among them) match the exported forms.
        var = g.op("ReduceMean", g.op("Pow", d, g.const(2.0)), axes=[1], keepdims=1)
        y = g.op("Div", d, g.op("Sqrt", g.op("Add", var, g.const(_LN_EPS))))
        return g.op("Add", g.op("Mul", y, self.channel_param(p["scale"], f"{name}/scale")),
                    self.channel_param(p["bias"], f"{name}/bias"))

    def gelu(self, x: str) -> str:
        # Exactly PyTorch's exported form, x * (1 + erf(x / sqrt 2)) * 0.5: OpenVINO fuses this pattern into one Gelu
        # layer; with x * sqrt(0.5) or a final / 2 it leaves the GELU as separate element-wise kernels.
        g = self.g
        erf = g.op("Erf", g.op("Div", x, g.const(np.sqrt(2.0))))
        return g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.const(1.0))), g.const(0.5))

    def dims(self, x: str) -> tuple[str, str]:
        """(H, W) of [N, C, H, W] as int64 [1] tensors."""
        shape = self.g.op("Shape", x)
        return (self.g.op("Slice", shape, self.g.ints(2), self.g.ints(3)),
                self.g.op("Slice", shape, self.g.ints(3), self.g.ints(4)))

    def pool(self, x: str, kernel: tuple[int, int] | None) -> str:
        """Channel-attention pooling (layers.channel_pool): the global mean, or TLC's box mean of window
        min(map, kernel) replicate-padded back to the map size. When the window covers the whole map the box mean is
        one value broadcast by the padding, i.e. the global mean, so one dynamic graph serves every size."""
        g = self.g
        if kernel is None:
            return g.op("GlobalAveragePool", x)
        h, w = self.dims(x)
        k1, k2 = g.op("Min", h, g.ints(kernel[0])), g.op("Min", w, g.ints(kernel[1]))
        s = g.op("CumSum", g.op("CumSum", x, g.const(3, np.int64)), g.const(2, np.int64))
        s = g.op("Pad", s, g.ints(0, 0, 1, 1, 0, 0, 0, 0))  # a zero row and column in front, as the official code
        one = g.ints(1)
        oh, ow = g.op("Add", g.op("Sub", h, k1), one), g.op("Add", g.op("Sub", w, k2), one)
        zero = g.ints(0)

        def window(r0: str, c0: str) -> str:
            starts = g.op("Concat", r0, c0, axis=0)
            ends = g.op("Concat", g.op("Add", r0, oh), g.op("Add", c0, ow), axis=0)
            return g.op("Slice", s, starts, ends, g.ints(2, 3))

        s1, s2, s3, s4 = window(zero, zero), window(zero, k2), window(k1, zero), window(k1, k2)
        area = g.op("Cast", g.op("Mul", k1, k2), to=1)  # 1: FLOAT
        out = g.op("Div", g.op("Sub", g.op("Sub", g.op("Add", s4, s1), s2), s3), area)
        two = g.ints(2)
        top, left = g.op("Div", g.op("Sub", h, oh), two), g.op("Div", g.op("Sub", w, ow), two)
        bottom, right = g.op("Sub", g.op("Sub", h, oh), top), g.op("Sub", g.op("Sub", w, ow), left)
        pads = g.op("Concat", g.ints(0, 0), top, left, g.ints(0, 0), bottom, right, axis=0)
        return g.op("Pad", out, pads, mode="edge")

    # Networks.

    def block(self, inp: str, p: Mapping[str, Any], name: str, kernel: tuple[int, int] | None) -> str:
        g = self.g
        x = self.layer_norm(inp, p["norm1"], f"{name}/norm1")
        x = self.conv(x, p["conv1"], f"{name}/conv1")
        x = self.conv(x, p["conv2"], f"{name}/conv2", groups=np.asarray(p["conv2"]["kernel"]).shape[-1])
        x = self.gelu(x)
        s = self.pool(x, kernel)
        s = g.op("Relu", self.conv(s, p["se_1"], f"{name}/se_1"))
        x = g.op("Mul", x, g.op("Sigmoid", self.conv(s, p["se_3"], f"{name}/se_3")))
        x = self.conv(x, p["conv3"], f"{name}/conv3")
        y = g.op("Add", inp, g.op("Mul", x, self.channel_param(p["beta"], f"{name}/beta")))
        x = self.layer_norm(y, p["norm2"], f"{name}/norm2")
        x = self.conv(self.gelu(self.conv(x, p["conv4"], f"{name}/conv4")), p["conv5"], f"{name}/conv5")
        return g.op("Add", y, g.op("Mul", x, self.channel_param(p["gamma"], f"{name}/gamma")))

    def unet(self, inp: str, p: Mapping[str, Any], a: BaselineArch, name: str, residual: bool, multiple: int) -> str:
        """models/baseline.UNet on an input already padded to `multiple`."""
        tlc = self.arch.tlc
        kernel = (lambda level: tlc_kernel_size(self.arch.train_size, multiple, level) if tlc else None)

        def run(x: str, prefix: str, count: int, level: int) -> str:
            for b in range(count):
                x = self.block(x, p[f"{prefix}_{b}"], f"{name}/{prefix}_{b}", kernel(level))
            return x

        x = self.conv(inp, p["intro"], f"{name}/intro")
        skips = []
        for level, num in enumerate(a.enc_blk_nums):
            x = run(x, f"encoders_{level}", num, level)
            skips.append(x)
            x = self.conv(x, p[f"downs_{level}"], f"{name}/downs_{level}", stride=2, pad=0)
        x = run(x, "middle_blks", a.middle_blk_num, a.levels)
        for i, (num, skip) in enumerate(zip(a.dec_blk_nums, skips[::-1])):
            x = self.g.op("DepthToSpace", self.conv(x, p[f"ups_{i}"], f"{name}/ups_{i}"), blocksize=2, mode="CRD")
            x = run(self.g.op("Add", x, skip), f"decoders_{i}", num, a.levels - 1 - i)
        x = self.conv(x, p["ending"], f"{name}/ending")
        return self.g.op("Add", x, inp) if residual else x

    def extra(self, x: str, p: Mapping[str, Any], a: ExtraArch) -> str:
        g, relu = self.g, (lambda t: self.g.op("Relu", t))
        if a.kind == "baseline":
            return self.unet(x, p, a.as_baseline(), "extra", False, self.arch.pad_multiple)
        if a.kind == "conv_deconv":
            x = relu(self.conv(x, p["intro"], "extra/intro"))
            for i in range(a.levels):
                x = relu(self.conv(x, p[f"downs_{i}"], f"extra/downs_{i}", stride=2, pad=1))
            for i in range(a.levels):
                x = relu(self.conv_transpose(x, p[f"ups_{i}"], f"extra/ups_{i}"))
            return self.conv(x, p["ending"], "extra/ending")

        def double_conv(t: str, name: str) -> str:
            t = relu(self.conv(t, p[f"{name}_a"], f"extra/{name}_a"))
            return relu(self.conv(t, p[f"{name}_b"], f"extra/{name}_b"))

        skips = []
        for i in range(a.levels):
            x = double_conv(x, f"encoders_{i}")
            skips.append(x)
            x = self.conv(x, p[f"downs_{i}"], f"extra/downs_{i}", stride=2, pad=0)
        x = double_conv(x, "middle")
        for i, skip in enumerate(skips[::-1]):
            x = self.conv_transpose(x, p[f"ups_{i}"], f"extra/ups_{i}")
            x = double_conv(g.op("Concat", x, skip, axis=1), f"decoders_{i}")
        return self.conv(x, p["ending"], "extra/ending")

    def model(self, x: str, params: Mapping[str, Any], compare: bool) -> list[str]:
        """The outputs on the padded input `x`: [restored], or every method's output with `compare`."""
        a, g, m = self.arch, self.g, self.arch.pad_multiple
        if a.kind == "baseline":
            return [self.unet(x, params, a.backbone, "model", True, m)]
        deblur = lambda t, n: self.unet(t, params["deblur"], a.deblur, f"deblur{n}", True, m)  # noqa: E731
        denoised = self.unet(x, params["denoise"], a.denoise, "denoise", True, m)
        if a.kind == "serial" and not compare:
            return [deblur(denoised, "_serial")]
        deblurred = deblur(x, "")
        outs = [deblurred, denoised] + ([deblur(denoised, "_serial")] if compare else [])
        if a.kind == "restorenet":
            residuals = g.op("Concat", g.op("Sub", x, deblurred), g.op("Sub", x, denoised), axis=1)
            correction = self.extra(residuals, params["extra"], a.extra)
            if a.extra.refine_conv:
                hidden = g.op("Relu", self.conv(correction, params["refine_0"], "refine_0"))
                correction = g.op("Add", correction, self.conv(hidden, params["refine_1"], "refine_1"))
            outs.append(g.op("Add", x, correction))
        return outs if compare else outs[-1:]


def build_onnx(arch: ModelArch, params: Mapping[str, Any], *, compare: bool = False,
               size: tuple[int, int] | None = None, batch: int | None = None) -> Any:
    """The model as an `onnx.ModelProto` (module docstring for inputs and outputs).

    Args:
      arch: the architecture (its `tlc` as exported).
      params: the Flax parameter tree (host or device arrays).
      compare: output every method's result stacked along channels (what `evaluate` scores) instead of the model's.
      size: (H, W) to fix the input size; None leaves H and W dynamic.
      batch: a fixed batch size; None leaves it dynamic.
    """
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    b = _Builder(g, arch)
    m = arch.pad_multiple
    h, w = b.dims(INPUT)
    pad_h = g.op("Mod", g.op("Sub", g.ints(m), g.op("Mod", h, g.ints(m))), g.ints(m))
    pad_w = g.op("Mod", g.op("Sub", g.ints(m), g.op("Mod", w, g.ints(m))), g.ints(m))
    padded = g.op("Pad", INPUT, g.op("Concat", g.ints(0, 0, 0, 0, 0, 0), pad_h, pad_w, axis=0))
    outs = b.model(padded, params, compare)
    y = outs[0] if len(outs) == 1 else g.op("Concat", *outs, axis=1)
    g.nodes.append(helper.make_node("Slice", [y, g.ints(0, 0), g.op("Concat", h, w, axis=0), g.ints(2, 3)],
                                    [OUTPUT]))
    hw = list(size) if size is not None else ["height", "width"]
    n = batch if batch is not None else "batch"
    graph = helper.make_graph(
        g.nodes, f"restorenet_jax_{arch.kind}", [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [n, 3, *hw])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [n, 3 * len(outs), *hw])], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="restorenet_jax")
    model.ir_version = 8  # readable by every onnxruntime and OpenVINO release that supports opset 17
    doc = {"kind": arch.kind, "tlc": str(arch.tlc), "layout": "NCHW float32 RGB in [0, 1]",
           "outputs": ",".join(METHODS[arch.kind]) if compare else "restored", "arch": arch.to_json()}
    for key, value in doc.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model
