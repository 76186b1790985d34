"""Reading an official checkpoint: unwrapping its container, detecting the architecture, validating the keys."""
from __future__ import annotations

import re
from typing import Any, Mapping

from restorenet_jax.convert import key_map
from restorenet_jax.models.arch import BaselineArch, ExtraArch, ModelArch

SHOW = 5  # offending keys named in an error message before "... and N more"


class ConversionError(Exception):
    """A checkpoint that cannot be converted; the message names the offending keys."""


def _name_keys(keys: list[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:SHOW])
    more = f" ... and {len(keys) - SHOW} more" if len(keys) > SHOW else ""
    return f"{len(keys)}: {shown}{more}"


def unwrap_state_dict(obj: Any, key: str | None = None) -> tuple[dict, str]:
    """Finds the state_dict in a loaded checkpoint: `{'params': sd}`, `{'params_ema': sd}` or a bare sd.

    Args:
      obj: what torch.load returned.
      key: 'params' or 'params_ema' to choose; None takes 'params', else 'params_ema', else a bare state_dict.
    Returns:
      (state_dict with any leading 'module.' stripped, description of where it was found).
    """
    if not isinstance(obj, Mapping):
        raise ConversionError(f"checkpoint holds a {type(obj).__name__}, not a dict of tensors")
    if key is not None:
        if key not in obj:
            raise ConversionError(f"checkpoint has no '{key}' entry (top-level keys: {_name_keys(list(obj))})")
        sd, where = obj[key], key
    elif "params" in obj and isinstance(obj["params"], Mapping):
        sd, where = obj["params"], "params"
    elif "params_ema" in obj and isinstance(obj["params_ema"], Mapping):
        sd, where = obj["params_ema"], "params_ema"
    else:
        sd, where = obj, "bare state_dict"
    if not isinstance(sd, Mapping):
        raise ConversionError(f"checkpoint entry '{where}' is not a state_dict")
    bad = [k for k, v in sd.items() if not hasattr(v, "shape")]
    if bad:
        raise ConversionError(f"entries that are not tensors in '{where}' ({_name_keys([str(k) for k in bad])})")
    out = {}
    for k, v in sd.items():
        k = str(k)
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out, where


def _count(keys: list[str], pattern: str) -> dict[int, set[int]]:
    """{level: {block indices}} for keys matching `pattern` with two integer groups (or one: level -> {})."""
    found: dict[int, set[int]] = {}
    rx = re.compile(pattern)
    for k in keys:
        m = rx.match(k)
        if m:
            groups = [int(g) for g in m.groups()]
            found.setdefault(groups[0], set())
            if len(groups) > 1:
                found[groups[0]].add(groups[1])
    return found


def _detect_unet(sd: Mapping[str, Any], prefix: str, suffix: str) -> tuple[int, int, tuple, int, tuple, int, int]:
    """(in_channels, width, enc, middle, dec, dw_expand, ffn_expand) of one U-Net inside `sd`."""
    p, s = re.escape(prefix), re.escape(suffix)
    intro = sd.get(f"{prefix}intro{suffix}.weight")
    if intro is None or len(intro.shape) != 4:
        raise ConversionError(f"unknown architecture: no 4-D '{prefix}intro{suffix}.weight'")
    width, in_ch = int(intro.shape[0]), int(intro.shape[1])
    keys = list(sd)
    levels = len(_count(keys, rf"^{p}downs{s}\.(\d+)\.weight$"))
    enc_found = _count(keys, rf"^{p}encoders{s}\.(\d+)\.(\d+)\.")
    dec_found = _count(keys, rf"^{p}decoders{s}\.(\d+)\.(\d+)\.")
    middle_found = _count(keys, rf"^{p}middle_blks{s}\.(\d+)\.")
    enc = tuple(len(enc_found.get(level, ())) for level in range(levels))
    dec = tuple(len(dec_found.get(level, ())) for level in range(levels))
    middle = len(middle_found)
    # Expansions from the first block found: conv1 is c -> c*dw_expand, conv4 is c -> c*ffn_expand.
    dw_expand, ffn_expand = 1, 2
    for k in keys:
        m = re.match(rf"^({p}(?:encoders{s}\.\d+|decoders{s}\.\d+|middle_blks{s})\.\d+)\.norm1\.weight$", k)
        if m:
            c = int(sd[k].shape[0])
            try:
                dw_expand = int(sd[f"{m.group(1)}.conv1.weight"].shape[0]) // c
                ffn_expand = int(sd[f"{m.group(1)}.conv4.weight"].shape[0]) // c
            except KeyError as e:
                raise ConversionError(f"missing keys: block {m.group(1)} has no {e.args[0]}") from None
            break
    return in_ch, width, enc, middle, dec, max(dw_expand, 1), max(ffn_expand, 1)


def _baseline(sd, prefix) -> BaselineArch:
    in_ch, width, enc, middle, dec, dw, ffn = _detect_unet(sd, prefix, "")
    return BaselineArch(width, enc, middle, dec, dw, ffn, in_ch)


def detect_arch(sd: Mapping[str, Any]) -> ModelArch:
    """The architecture of an official state_dict from its key names and shapes alone.

    Baseline: `intro.weight` ...; RestoreNet: `deblur.*`, `denoise.*` and `*_supple`; StraightNet (serial):
    `deblur.*` and `denoise.*` only.
    """
    keys = list(sd)
    if any(k.startswith("deblur.") for k in keys) or any(k.startswith("denoise.") for k in keys):
        deblur, denoise = _baseline(sd, "deblur."), _baseline(sd, "denoise.")
        if any(k.split(".")[0].endswith("_supple") for k in keys):
            in_ch, width, enc, middle, dec, dw, ffn = _detect_unet(sd, "", "_supple")
            if in_ch != 2 * deblur.img_channel:
                raise ConversionError(f"unknown architecture: intro_supple takes {in_ch} channels, expected "
                                      f"{2 * deblur.img_channel}")
            extra = ExtraArch("baseline", width, enc, middle, dec, dw, ffn)
            return ModelArch("restorenet", deblur=deblur, denoise=denoise, extra=extra)
        return ModelArch("serial", deblur=deblur, denoise=denoise)
    if "intro.weight" in sd:
        return ModelArch("baseline", backbone=_baseline(sd, ""))
    raise ConversionError("unknown architecture: none of 'intro.weight' (Baseline) or 'deblur.intro.weight' "
                          f"(RestoreNet) is present; keys found {_name_keys(keys)}")


def validate_keys(sd: Mapping[str, Any], arch: ModelArch) -> None:
    """Raises ConversionError naming missing, unexpected and mis-shaped keys against the detected architecture."""
    from restorenet_jax.models.restorenet import abstract_params

    expected = key_map.expected_shapes(abstract_params(arch))
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    misshaped = [f"{k} {tuple(sd[k].shape)} != {expected[k]}" for k in expected
                 if k in sd and tuple(sd[k].shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"missing keys ({_name_keys(missing)})")
    if unexpected:
        problems.append(f"unexpected keys ({_name_keys(unexpected)})")
    if misshaped:
        problems.append(f"mis-shaped keys ({_name_keys(misshaped)})")
    if problems:
        raise ConversionError(f"checkpoint does not match the detected {arch.kind} architecture: "
                              + "; ".join(problems))
