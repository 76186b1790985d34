"""PyTorch reference models, with the official NAFNet / RestoreNet key names and semantics.

Independent re-statements of the official classes (Baseline, BaselineLocal, RestoreNet, RestoreNetLocal,
StraightNet) from their published definitions (the NAFNet and RestoreNet repositories): NCHW, PixelShuffle, LayerNorm2d, and the
TLC AvgPool2d replacement fixed by one forward pass at the training size, as `Local_Base.convert` does.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class BaselineBlock(nn.Module):
    def __init__(self, c, dw_expand=1, ffn_expand=2):
        super().__init__()
        dw = c * dw_expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw, c, 1)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw, dw // 2, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(dw // 2, dw, 1), nn.Sigmoid())
        self.gelu = nn.GELU()
        self.conv4 = nn.Conv2d(c, ffn_expand * c, 1)
        self.conv5 = nn.Conv2d(ffn_expand * c, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def forward(self, inp):
        x = self.gelu(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.se(x))
        y = inp + x * self.beta
        x = self.conv5(self.gelu(self.conv4(self.norm2(y))))
        return y + x * self.gamma


def _unet_parts(module, prefix, in_ch, out_ch, width, enc, middle, dec, dw_expand, ffn_expand):
    """Registers intro/ending/encoders/downs/middle_blks/ups/decoders (+ optional suffix) on `module`."""
    setattr(module, f"intro{prefix}", nn.Conv2d(in_ch, width, 3, padding=1))
    setattr(module, f"ending{prefix}", nn.Conv2d(width, out_ch, 3, padding=1))
    encoders, downs, ups, decoders = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
    chan = width
    for num in enc:
        encoders.append(nn.Sequential(*[BaselineBlock(chan, dw_expand, ffn_expand) for _ in range(num)]))
        downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
        chan *= 2
    middle_blks = nn.Sequential(*[BaselineBlock(chan, dw_expand, ffn_expand) for _ in range(middle)])
    for num in dec:
        ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
        chan //= 2
        decoders.append(nn.Sequential(*[BaselineBlock(chan, dw_expand, ffn_expand) for _ in range(num)]))
    # Registration order as in the official constructors (it fixes the state_dict order).
    setattr(module, f"encoders{prefix}", encoders)
    setattr(module, f"decoders{prefix}", decoders)
    setattr(module, f"middle_blks{prefix}", middle_blks)
    setattr(module, f"ups{prefix}", ups)
    setattr(module, f"downs{prefix}", downs)


def _unet_forward(module, prefix, x):
    """Everything after `intro`: encoders/downs, middle, ups + additive skips, decoders, ending."""
    encs = []
    for encoder, down in zip(getattr(module, f"encoders{prefix}"), getattr(module, f"downs{prefix}")):
        x = encoder(x)
        encs.append(x)
        x = down(x)
    x = getattr(module, f"middle_blks{prefix}")(x)
    for decoder, up, skip in zip(getattr(module, f"decoders{prefix}"), getattr(module, f"ups{prefix}"), encs[::-1]):
        x = decoder(up(x) + skip)
    return getattr(module, f"ending{prefix}")(x)


def _pad(x, multiple):
    h, w = x.shape[-2:]
    return F.pad(x, (0, (multiple - w % multiple) % multiple, 0, (multiple - h % multiple) % multiple))


class Baseline(nn.Module):
    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=(), dw_expand=1,
                 ffn_expand=2):
        super().__init__()
        _unet_parts(self, "", img_channel, img_channel, width, enc_blk_nums, middle_blk_num, dec_blk_nums,
                    dw_expand, ffn_expand)
        self.padder_size = 2 ** len(enc_blk_nums)

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = _pad(inp, self.padder_size)
        return (_unet_forward(self, "", self.intro(inp)) + inp)[:, :, :h, :w]


class RestoreNet(nn.Module):
    """Original RestoreNet: supple width = deblur width, dw_expand = deblur dw_expand // 2, encoders from the
    denoise config, middle and decoders from the deblur config (as the original constructor does)."""

    def __init__(self, deblur: dict, denoise: dict, supple: dict):
        super().__init__()
        self.deblur = Baseline(**deblur)
        self.denoise = Baseline(**denoise)
        s = supple
        _unet_parts(self, "_supple", 6, 3, s["width"], s["enc_blk_nums"], s["middle_blk_num"], s["dec_blk_nums"],
                    s["dw_expand"], s["ffn_expand"])
        self.padder_size = 2 ** len(deblur["enc_blk_nums"])

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = _pad(inp, self.padder_size)
        x = torch.cat((inp - self.deblur(inp), inp - self.denoise(inp)), 1)
        return (inp + _unet_forward(self, "_supple", self.intro_supple(x)))[:, :, :h, :w]


class StraightNet(nn.Module):
    def __init__(self, deblur: dict, denoise: dict):
        super().__init__()
        self.deblur = Baseline(**deblur)
        self.denoise = Baseline(**denoise)
        self.padder_size = 2 ** len(deblur["enc_blk_nums"])

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = _pad(inp, self.padder_size)
        return self.deblur(self.denoise(inp))[:, :, :h, :w]


class LocalAvgPool2d(nn.Module):
    """TLC's replacement for AdaptiveAvgPool2d(1): kernel fixed at the first forward from base/train sizes."""

    def __init__(self, base_size, train_size):
        super().__init__()
        self.base_size, self.train_size, self.kernel_size = base_size, train_size, None

    def forward(self, x):
        if self.kernel_size is None:
            self.kernel_size = [x.shape[2] * self.base_size[0] // self.train_size[-2],
                                x.shape[3] * self.base_size[1] // self.train_size[-1]]
        if self.kernel_size[0] >= x.size(-2) and self.kernel_size[1] >= x.size(-1):
            return F.adaptive_avg_pool2d(x, 1)
        n, c, h, w = x.shape
        s = x.cumsum(dim=-1).cumsum(dim=-2)
        s = F.pad(s, (1, 0, 1, 0))
        k1, k2 = min(h, self.kernel_size[0]), min(w, self.kernel_size[1])
        out = (s[:, :, k1:, k2:] + s[:, :, :-k1, :-k2] - s[:, :, :-k1, k2:] - s[:, :, k1:, :-k2]) / (k1 * k2)
        _h, _w = out.shape[2:]
        pad = ((w - _w) // 2, (w - _w + 1) // 2, (h - _h) // 2, (h - _h + 1) // 2)
        return F.pad(out, pad, mode="replicate")


def make_local(model: nn.Module, train_size=(1, 3, 256, 256)) -> nn.Module:
    """Converts a model to its "Local" (TLC) variant in place, like `Local_Base.convert`, and returns it."""
    base_size = (int(train_size[-2] * 1.5), int(train_size[-1] * 1.5))

    def replace(module):
        for name, child in module.named_children():
            if len(list(child.children())) > 0:
                replace(child)
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(module, name, LocalAvgPool2d(base_size, train_size))

    replace(model)
    model.eval()
    with torch.no_grad():
        model(torch.rand(train_size))
    return model


@torch.no_grad()
def randomise(model: nn.Module, seed: int = 0, scale: float = 0.2) -> nn.Module:
    """Every parameter random (beta/gamma and norms included): the official zero init would hide bugs."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("norm1.weight") or name.endswith("norm2.weight"):
            p.copy_(1.0 + scale * torch.randn(p.shape, generator=g))
        else:
            p.copy_(scale * torch.randn(p.shape, generator=g))
    return model


def _baseline_kwargs(a) -> dict:
    return dict(img_channel=a.img_channel, width=a.width, middle_blk_num=a.middle_blk_num,
                enc_blk_nums=list(a.enc_blk_nums), dec_blk_nums=list(a.dec_blk_nums), dw_expand=a.dw_expand,
                ffn_expand=a.ffn_expand)


def from_arch(arch, seed: int = 0) -> nn.Module:
    """The reference torch model for a restorenet_jax ModelArch, randomised; "Local" (TLC) when arch.tlc."""
    if arch.kind == "baseline":
        model = Baseline(**_baseline_kwargs(arch.backbone))
    elif arch.kind == "serial":
        model = StraightNet(_baseline_kwargs(arch.deblur), _baseline_kwargs(arch.denoise))
    else:
        e = arch.extra
        supple = dict(width=e.width, enc_blk_nums=list(e.enc_blk_nums), middle_blk_num=e.middle_blk_num,
                      dec_blk_nums=list(e.dec_blk_nums), dw_expand=e.dw_expand, ffn_expand=e.ffn_expand)
        model = RestoreNet(_baseline_kwargs(arch.deblur), _baseline_kwargs(arch.denoise), supple)
    randomise(model, seed)
    model.eval()
    if arch.tlc:
        make_local(model, (1, 3, *arch.train_size))
    return model


@torch.no_grad()
def run(model: nn.Module, x_hwc) -> "np.ndarray":
    """[H, W, 3] numpy -> [H, W, 3] numpy through an NCHW torch model."""
    import numpy as np

    y = model(torch.from_numpy(np.ascontiguousarray(x_hwc)).permute(2, 0, 1)[None])
    return y[0].permute(1, 2, 0).numpy()
