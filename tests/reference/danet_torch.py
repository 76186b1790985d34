"""PyTorch reference of DANet's generator UNetG, written for the tests from the published description.

Attribute names follow the official code (zsyOAOA/DANet networks/UNetD.py, UNetG.py) so that its state dict
has the official keys: down_path.{i}.block.{0,2}.{weight,bias}, down_path.{i}.downsample.weight,
up_path.{j}.up.{weight,bias}, up_path.{j}.conv_block.block.{0,2}.{weight,bias}, last.{weight,bias}.
"""
import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Module):
    """Two 3x3 conv + LeakyReLU, optionally followed by a bias-free 4x4 stride-2 down conv."""

    def __init__(self, in_size: int, out_size: int, downsample: bool, relu_slope: float):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_size, out_size, 3, padding=1, bias=True), nn.LeakyReLU(relu_slope),
            nn.Conv2d(out_size, out_size, 3, padding=1, bias=True), nn.LeakyReLU(relu_slope))
        self.has_down = downsample
        if downsample:
            self.downsample = nn.Conv2d(out_size, out_size, 4, stride=2, padding=1, bias=False)

    def forward(self, x):
        out = self.block(x)
        if self.has_down:
            return self.downsample(out), out
        return out


class UpBlock(nn.Module):
    def __init__(self, in_size: int, out_size: int, relu_slope: float):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_size, out_size, 2, stride=2, bias=True)
        self.conv_block = ConvBlock(in_size, out_size, False, relu_slope)

    def forward(self, x, bridge):
        return self.conv_block(torch.cat([self.up(x), bridge], 1))


class UNetG(nn.Module):
    """Official constructor semantics: `in_chn` image channels; the network takes in_chn + 1 (the z channel)."""

    def __init__(self, in_chn: int = 3, wf: int = 32, depth: int = 5, relu_slope: float = 0.2):
        super().__init__()
        self.depth = depth
        self.down_path = nn.ModuleList()
        prev = in_chn + 1
        for i in range(depth):
            self.down_path.append(ConvBlock(prev, 2**i * wf, i + 1 < depth, relu_slope))
            prev = 2**i * wf
        self.up_path = nn.ModuleList()
        for i in reversed(range(depth - 1)):
            self.up_path.append(UpBlock(prev, 2**i * wf, relu_slope))
            prev = 2**i * wf
        self.last = nn.Conv2d(prev, in_chn, 3, padding=1, bias=True)

    def forward(self, x):
        skips = []
        for i, down in enumerate(self.down_path):
            if i + 1 < self.depth:
                x, skip = down(x)
                skips.append(skip)
            else:
                x = down(x)
        for i, up in enumerate(self.up_path):
            x = up(x, skips[-i - 1])
        return self.last(x)


def randomize_(model: nn.Module, generator: torch.Generator) -> None:
    """Overwrites EVERY parameter with random values (weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2))."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bias'):
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            else:
                fan_in = p[0].numel() if 'up.weight' not in name else p.shape[0] * p[0, 0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) / fan_in**0.5)


def generate(model: UNetG, x, z, multiple: int):
    """Official inference (test_generation_arbitrary.py): reflect-pad bottom/right, G(cat(x, z)) + x, crop.

    x: [B, 3, H, W]; z: [B, 1, Hp, Wp] at the padded size. Returns the unclamped noisy image [B, 3, H, W].
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    xp = F.pad(x, (0, pad_w, 0, pad_h), mode='reflect')
    out = model(torch.cat([xp, z], 1)) + xp
    return out[:, :, :h, :w]
