"""Analytic work of the networks: convolution multiply-accumulates (MACs) per layer, read off the architecture.

Only convolutions are counted (1x1, 3x3 depthwise, 2x2 stride-2 downs, 1x1 ups before PixelShuffle, the 3x3
intro/ending convs and the channel-attention 1x1s on the pooled vector); norms, GELU and elementwise products are
a few percent of the work and left out, as the NAFNet paper's MAC figures leave them out. One MAC = 2 FLOPs.
Training cost = 3x forward for the parts that are differentiated (forward + two backward matmuls) and 1x for
frozen parts that run forward only.
"""
from __future__ import annotations

from typing import Mapping

from restorenet_jax.models.arch import BaselineArch, ModelArch

# Peak dense FLOP/s per device by (device-kind substring, compute dtype), from vendor data sheets. The first
# matching substring wins, so more specific names come first. CPUs are 'unknown': MFU is then omitted.
# 'float32' is the plain (non-tensor-core) FP32 rate; XLA's default precision may run fp32 convolutions on TF32
# tensor cores (H100 SXM: 494e12), so an fp32 MFU above 100 % means TF32 was used: read the bf16 MFU instead.
PEAK_FLOPS: tuple[tuple[str, Mapping[str, float]], ...] = (
    ("H200", {"bfloat16": 989e12, "float32": 67e12}),
    ("H100 PCIe", {"bfloat16": 756e12, "float32": 51e12}),
    ("H100", {"bfloat16": 989e12, "float32": 67e12}),  # SXM
    ("A100", {"bfloat16": 312e12, "float32": 19.5e12}),
    ("L4", {"bfloat16": 121e12, "float32": 30e12}),
    ("TPU v5 lite", {"bfloat16": 197e12, "float32": 197e12 / 4}),
    ("TPU v5p", {"bfloat16": 459e12, "float32": 459e12 / 4}),
    ("TPU v4", {"bfloat16": 275e12, "float32": 275e12 / 4}),
    ("TPU v6", {"bfloat16": 918e12, "float32": 918e12 / 4}),
)


def peak_flops(device_kind: str, dtype: str) -> float | None:
    """Peak dense FLOP/s of one device for a compute dtype ('float32'/'bfloat16'); None when unknown (CPUs)."""
    for name, table in PEAK_FLOPS:
        if name.lower() in device_kind.lower():
            return table.get(dtype)
    return None


def block_macs(c: int, pixels: int, dw_expand: int, ffn_expand: int) -> int:
    """One Baseline block on `pixels` positions of c channels: conv1..conv5 per pixel + the pooled attention."""
    dw, ffn = c * dw_expand, c * ffn_expand
    per_pixel = c * dw + 9 * dw + dw * c + c * ffn + ffn * c  # conv1, depthwise conv2, conv3, conv4, conv5
    attention = dw * (dw // 2) * 2  # se_1 and se_3 on the [1, 1, dw] pooled vector (global pooling, no TLC)
    return per_pixel * pixels + attention


def unet_macs(arch: BaselineArch, height: int, width: int, in_channels: int = 3, out_channels: int = 3) -> int:
    """MACs of one U-Net forward on one [height, width] image (already padded to a multiple of 2**levels)."""
    a = arch
    pixels = height * width
    total = 9 * in_channels * a.width * pixels + 9 * a.width * out_channels * pixels  # intro + ending
    chan = a.width
    for num in a.enc_blk_nums:
        total += num * block_macs(chan, pixels, a.dw_expand, a.ffn_expand)
        total += (pixels // 4) * 4 * chan * (2 * chan)  # 2x2 stride-2 down: 4 taps per output pixel
        chan, pixels = 2 * chan, pixels // 4
    total += a.middle_blk_num * block_macs(chan, pixels, a.dw_expand, a.ffn_expand)
    for num in a.dec_blk_nums:
        total += pixels * chan * (2 * chan)  # 1x1 up (no bias) before PixelShuffle(2)
        chan, pixels = chan // 2, pixels * 4
        total += num * block_macs(chan, pixels, a.dw_expand, a.ffn_expand)
    return total


def _padded(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def model_macs(arch: ModelArch, height: int, width: int) -> dict[str, int]:
    """MACs of one forward on one image, per parameter group ('backbone' | 'deblur', 'denoise', 'extra').

    Inputs are padded to arch.pad_multiple first, as the models do. Only the 'baseline' extra kind (the original
    supple U-Net) and Baseline backbones are counted; the original RestoreNet's comparison extras raise ValueError.
    """
    h, w = _padded(height, arch.pad_multiple), _padded(width, arch.pad_multiple)
    if arch.kind == "baseline":
        return {"backbone": unet_macs(arch.backbone, h, w)}
    out = {"deblur": unet_macs(arch.deblur, h, w), "denoise": unet_macs(arch.denoise, h, w)}
    if arch.kind == "restorenet":
        if arch.extra.kind != "baseline" or arch.extra.refine_conv:
            raise ValueError(f"no MAC count for extra kind {arch.extra.kind!r} (refine_conv={arch.extra.refine_conv})")
        out["extra"] = unet_macs(arch.extra.as_baseline(), h, w, in_channels=6, out_channels=3)
    return out


def inference_flops(arch: ModelArch, height: int, width: int, batch: int = 1) -> float:
    """FLOPs (2 x MACs) of one forward over a [batch, height, width, 3] input."""
    return 2.0 * batch * sum(model_macs(arch, height, width).values())


def train_flops(arch: ModelArch, height: int, width: int, batch: int, trainable: frozenset[str]) -> float:
    """FLOPs of one training step: 3x forward for trainable groups, 1x for frozen forward-only groups.

    (A frozen group upstream of a trainable one still needs no backward: its output is a constant to the loss.)
    """
    macs = model_macs(arch, height, width)
    return 2.0 * batch * sum(m * (3 if group in trainable else 1) for group, m in macs.items())
