"""Convert an official PyTorch checkpoint (NAFNet Baseline or original RestoreNet) to a Flax model directory.

    python -m convert.torch_to_flax INPUT.pth OUTPUT_DIR [--tlc] [--key params|params_ema]

The architecture (Baseline / RestoreNet / serial StraightNet; width, block counts, expansions) is detected from the
key names and shapes. OUTPUT_DIR receives `params/` (orbax) and `arch.json`; nothing is left there on failure.
Exit status 2 on bad input, with a message naming the offending keys.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from restorenet_jax.convert import key_map
from restorenet_jax.convert.detect import ConversionError, detect_arch, unwrap_state_dict, validate_keys
from restorenet_jax.models import model_dir
from restorenet_jax.models.arch import ModelArch


def load_torch_file(path: str | Path) -> object:
    """torch.load on the CPU with tensors only (no arbitrary pickled code); clear errors for bad files."""
    import torch  # torch is needed only here, for reading the official format

    p = Path(path)
    if not p.is_file():
        raise ConversionError(f"{p}: no such file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises pickle/zip/runtime errors for non-torch and truncated files
        raise ConversionError(f"{p}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def convert_state_dict(sd: dict, *, tlc: bool = False, train_size: int = 256) -> tuple[ModelArch, dict]:
    """(arch, Flax params) from an official state_dict; raises ConversionError on any mismatch."""
    arch = detect_arch(sd)
    validate_keys(sd, arch)
    arrays = {k: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v) for k, v in sd.items()}
    params = key_map.state_dict_to_params(arrays)
    return arch.replace(tlc=tlc, train_size=(train_size, train_size)), params


def count_params(params: dict) -> int:
    return int(sum(np.prod(v.shape) for v in key_map.flatten(params).values()))


def describe(arch: ModelArch) -> str:
    """One human-readable line per sub-network."""
    lines = [f"model: {arch.kind}  (TLC {'on' if arch.tlc else 'off'}, train size {arch.train_size[0]})"]
    for name in ("backbone", "deblur", "denoise", "extra"):
        a = getattr(arch, name)
        if a is not None:
            lines.append(f"  {name}: width {a.width}, enc {list(a.enc_blk_nums)}, middle {a.middle_blk_num}, "
                         f"dec {list(a.dec_blk_nums)}, dw_expand {a.dw_expand}, ffn_expand {a.ffn_expand}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convert.torch_to_flax", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="official checkpoint (.pth): {'params': sd}, {'params_ema': sd} or a state_dict")
    parser.add_argument("output", help="model directory to create (params/ + arch.json)")
    parser.add_argument("--tlc", action="store_true", help="record TLC (Local) inference mode as the default, "
                        "as the official GoPro model (BaselineLocal) uses")
    parser.add_argument("--train-size", type=int, default=256, help="training crop defining TLC windows (256)")
    parser.add_argument("--key", choices=("params", "params_ema"), default=None,
                        help="which entry to convert (default: params, else params_ema, else a bare state_dict)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it is an existing model "
                        "directory (a folder holding anything else, or a file, is never replaced)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        obj = load_torch_file(args.input)
        sd, where = unwrap_state_dict(obj, args.key)
        arch, params = convert_state_dict(sd, tlc=args.tlc, train_size=args.train_size)
        out = model_dir.save_model_dir(args.output, params, arch, overwrite=args.overwrite,
                                      info={"source": str(Path(args.input).name), "entry": where})
    except (ConversionError, FileExistsError, model_dir.ModelDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(describe(arch))
    print(f"parameters: {count_params(params):,}  (from '{where}')")
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
