"""Architecture descriptions: small frozen dataclasses that fully determine a network's shape.

They are what the converter detects from an official checkpoint, what `arch.json` beside every checkpoint stores,
and what configs build. Keeping them plain data (no Flax) lets tools read a checkpoint's architecture cheaply.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

MODEL_KINDS = ("baseline", "restorenet", "serial")
EXTRA_KINDS = ("baseline", "conv_deconv", "unet")


@dataclasses.dataclass(frozen=True)
class BaselineArch:
    """Hyperparameters of the NAFNet-paper Baseline U-Net (same names as the official class)."""

    width: int = 16
    enc_blk_nums: tuple[int, ...] = ()
    middle_blk_num: int = 1
    dec_blk_nums: tuple[int, ...] = ()
    dw_expand: int = 1
    ffn_expand: int = 2
    img_channel: int = 3

    def __post_init__(self):
        object.__setattr__(self, "enc_blk_nums", tuple(int(n) for n in self.enc_blk_nums))
        object.__setattr__(self, "dec_blk_nums", tuple(int(n) for n in self.dec_blk_nums))
        if len(self.enc_blk_nums) != len(self.dec_blk_nums):
            raise ValueError(f"encoder and decoder level counts differ: {self.enc_blk_nums} vs {self.dec_blk_nums}")
        if self.width < 1 or self.dw_expand < 1 or self.ffn_expand < 1:
            raise ValueError(f"width and expansions must be >= 1: {self}")

    @property
    def levels(self) -> int:
        return len(self.enc_blk_nums)


@dataclasses.dataclass(frozen=True)
class ExtraArch:
    """The "extra" network of RestoreNet that maps the two residuals (6 channels) to the correction.

    kind 'baseline' is the original RestoreNet "supple" U-Net (Baseline blocks, official key names);
    'conv_deconv' and 'unet' are the original RestoreNet's simpler comparison models. `refine_conv` appends two 3x3 convolutions
    (the original RestoreNet's "Baseline(Width16)+Conv").
    """

    kind: str = "baseline"
    width: int = 64
    enc_blk_nums: tuple[int, ...] = (2, 2, 4, 8)
    middle_blk_num: int = 1
    dec_blk_nums: tuple[int, ...] = (1, 1, 1, 1)
    dw_expand: int = 1
    ffn_expand: int = 2
    refine_conv: bool = False

    def __post_init__(self):
        if self.kind not in EXTRA_KINDS:
            raise ValueError(f"unknown extra kind {self.kind!r}; expected one of {EXTRA_KINDS}")
        object.__setattr__(self, "enc_blk_nums", tuple(int(n) for n in self.enc_blk_nums))
        object.__setattr__(self, "dec_blk_nums", tuple(int(n) for n in self.dec_blk_nums))
        if len(self.enc_blk_nums) != len(self.dec_blk_nums):
            raise ValueError(f"encoder and decoder level counts differ: {self.enc_blk_nums} vs {self.dec_blk_nums}")

    @property
    def levels(self) -> int:
        return len(self.enc_blk_nums)

    def as_baseline(self, img_channel: int = 3) -> BaselineArch:
        return BaselineArch(self.width, self.enc_blk_nums, self.middle_blk_num, self.dec_blk_nums,
                            self.dw_expand, self.ffn_expand, img_channel)


@dataclasses.dataclass(frozen=True)
class ModelArch:
    """A whole model: a single Baseline, the parallel RestoreNet, or the serial comparison model.

    `tlc` switches the TLC "Local" inference mode (channel-attention pooling over a window 1.5x the training
    feature map); `train_size` is the training crop that defines those windows. Neither changes any parameter.
    """

    kind: str = "baseline"
    backbone: BaselineArch | None = None  # kind == 'baseline'
    deblur: BaselineArch | None = None  # kind in ('restorenet', 'serial')
    denoise: BaselineArch | None = None
    extra: ExtraArch | None = None  # kind == 'restorenet'
    tlc: bool = False
    train_size: tuple[int, int] = (256, 256)

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; expected one of {MODEL_KINDS}")
        object.__setattr__(self, "train_size", tuple(int(s) for s in self.train_size))
        needed = {"baseline": ("backbone",), "restorenet": ("deblur", "denoise", "extra"),
                  "serial": ("deblur", "denoise")}[self.kind]
        for name in needed:
            if getattr(self, name) is None:
                raise ValueError(f"model kind {self.kind!r} needs '{name}'")

    def replace(self, **changes: Any) -> "ModelArch":
        return dataclasses.replace(self, **changes)

    @property
    def pad_multiple(self) -> int:
        """Inputs are zero-padded (right/bottom) to a multiple of this: 2**levels of the deepest sub-network."""
        levels = [a.levels for a in (self.backbone, self.deblur, self.denoise, self.extra) if a is not None]
        return 2 ** max(levels)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelArch":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown model architecture fields: {sorted(unknown)}")
        for name in ("backbone", "deblur", "denoise"):
            if d.get(name) is not None:
                d[name] = BaselineArch(**d[name])
        if d.get("extra") is not None:
            d["extra"] = ExtraArch(**d["extra"])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "ModelArch":
        return cls.from_dict(json.loads(text))


# The official configurations (NAFNet's options/train/*/Baseline-width64.yml).
GOPRO_W64 = BaselineArch(width=64, enc_blk_nums=(1, 1, 1, 28), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1),
                         dw_expand=2, ffn_expand=2)
SIDD_W64 = BaselineArch(width=64, enc_blk_nums=(2, 2, 4, 8), middle_blk_num=12, dec_blk_nums=(2, 2, 2, 2),
                        dw_expand=2, ffn_expand=2)
# The original RestoreNet's supple network as shipped (width 64, dw_expand 1, decoders [1,1,1,1]).
RESTORENET_EXTRA_W64 = ExtraArch()

NAMED_BACKBONES = {"gopro64": GOPRO_W64, "sidd64": SIDD_W64}

# The original RestoreNet's extra-model candidates (the RestoreNet slides): 4 levels, encoders [2, 2, 4, 8]; the slides' decoders [2, 2, 2, 2]
# as "baseline64_dec2". Select one in a config with `c.model.extra = ...` fields of the same names.
NAMED_EXTRAS = {
    "conv_deconv": ExtraArch(kind="conv_deconv", width=32),
    "unet": ExtraArch(kind="unet", width=32),
    "baseline16": ExtraArch(width=16),
    "baseline16_conv": ExtraArch(width=16, refine_conv=True),
    "baseline32": ExtraArch(width=32),
    "baseline64": RESTORENET_EXTRA_W64,
    "baseline64_dec2": ExtraArch(width=64, dec_blk_nums=(2, 2, 2, 2)),
}
