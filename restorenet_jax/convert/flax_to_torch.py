"""Convert a Flax model directory back to an official PyTorch checkpoint (`{'params': state_dict}`).

    python -m convert.flax_to_torch CKPT_DIR OUTPUT.pth

The result loads into the official classes (Baseline / RestoreNet / StraightNet) with strict key matching.
Only architectures that exist in the official code can be exported (RestoreNet's extra network of kind
'baseline' without the refinement convs).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from restorenet_jax.convert import key_map
from restorenet_jax.convert.detect import ConversionError
from restorenet_jax.models import model_dir


def export_state_dict(ckpt_dir: str | os.PathLike) -> dict:
    """The official-layout state_dict (torch tensors) of a model directory."""
    import torch

    arch, params = model_dir.load_model_dir(ckpt_dir)
    if arch.kind == "restorenet" and (arch.extra.kind != "baseline" or arch.extra.refine_conv):
        raise ConversionError(f"extra network kind {arch.extra.kind!r}"
                              f"{' with refine_conv' if arch.extra.refine_conv else ''} has no official PyTorch class")
    return {k: torch.from_numpy(v.copy()) for k, v in key_map.params_to_state_dict(params).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convert.flax_to_torch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt_dir", help="model directory (params/ + arch.json)")
    parser.add_argument("output", help="checkpoint file to write (.pth)")
    args = parser.parse_args(argv)
    import torch

    out = Path(args.output)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        sd = export_state_dict(args.ckpt_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"params": sd}, tmp)
        os.replace(tmp, out)  # atomic: never a truncated OUTPUT.pth
    except (ConversionError, model_dir.ModelDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {out} ({len(sd)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
