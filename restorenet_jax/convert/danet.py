"""Convert the official DANet checkpoint's generator to a flax params tree saved with orbax.

Usage:
  python -m convert.danet DANet.pt OUTPUT_DIR [--overwrite]

DANet.pt is the official file (zsyOAOA/DANet model_states/): a dict {'G': generator state dict,
'D': discriminator state dict}; a 'module.' prefix (DataParallel) is stripped. The architecture (wf, depth,
channels) is read from the weight shapes. OUTPUT_DIR receives `params/` (orbax StandardCheckpointer) and
`arch.json`; it is written to a temporary directory beside it and renamed into place, so a failure leaves
nothing half-written. Bad input (not a torch file, missing/unexpected keys, wrong shapes) exits with status 2
and a one-line message naming the offending keys.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from restorenet_jax.data.danet_noise import ARCH_FILE, PARAMS_DIR
from restorenet_jax.models import model_dir

ARCH_NAME = 'danet_unetg'


class ConversionError(Exception):
    """Bad input checkpoint; the message names the offending keys."""


def load_generator_state(path: str) -> dict[str, np.ndarray]:
    """Reads the official checkpoint and returns the 'G' state dict as numpy arrays, 'module.' stripped."""
    import torch  # only the converter needs torch

    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises many types for non-checkpoint files
        raise ConversionError(f'{path} is not a readable torch checkpoint ({type(e).__name__})') from e
    if not isinstance(ckpt, dict) or 'G' not in ckpt:
        keys = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ConversionError(f"{path}: missing key 'G' (the generator state dict); found {keys}")
    state = {}
    for key, value in ckpt['G'].items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{path}: G['{key}'] is not a tensor")
        state[key.removeprefix('module.')] = value.detach().cpu().float().numpy()
    return state


def infer_arch(state: dict[str, np.ndarray]) -> dict[str, Any]:
    """Architecture hyper-parameters from the weight shapes (relu slope is not stored: the official 0.2)."""
    first = 'down_path.0.block.0.weight'
    if first not in state:
        raise ConversionError(f"missing key '{first}'")
    levels = {int(m.group(1)) for k in state if (m := re.match(r'down_path\.(\d+)\.', k))}
    out_chans, in_chans = state[first].shape[:2]
    return {'name': ARCH_NAME, 'in_chans': int(in_chans), 'wf': int(out_chans), 'depth': len(levels),
            'relu_slope': 0.2}


def state_to_params(state: dict[str, np.ndarray], arch: dict[str, Any]) -> dict:
    """Maps the official state dict onto the flax params tree, checking keys and shapes against the model."""
    import jax

    from restorenet_jax.models.danet import UNetG, abstract_params, official_key_table

    table = official_key_table(arch['depth'])
    missing = sorted(set(table) - set(state))
    unexpected = sorted(set(state) - set(table))
    if missing:
        raise ConversionError(f'missing keys in G: {", ".join(missing)}')
    if unexpected:
        raise ConversionError(f'unexpected keys in G: {", ".join(unexpected)}')
    model = UNetG(in_chans=arch['in_chans'], wf=arch['wf'], depth=arch['depth'], relu_slope=arch['relu_slope'])
    expected = abstract_params(model)
    params: dict = {}
    for key, (path, layout) in table.items():
        value = state[key]
        if layout == 'conv':  # [out, in, kh, kw] -> [kh, kw, in, out]
            value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
        elif layout == 'convT':  # [in, out, kh, kw] -> [kh, kw, in, out]
            value = value.transpose(2, 3, 0, 1) if value.ndim == 4 else value
        want = expected
        for name in path:
            want = want[name]
        if tuple(value.shape) != tuple(want.shape):
            raise ConversionError(f"G['{key}'] has shape {tuple(state[key].shape)}, which does not fit "
                                  f'{"/".join(path)} {tuple(want.shape)}')
        node = params
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = np.ascontiguousarray(value, np.float32)
    assert jax.tree.structure(params) == jax.tree.structure(expected)
    return params


def save_converted(params: dict, arch: dict[str, Any], output_dir: str, overwrite: bool = False) -> None:
    """Writes params (orbax) + arch.json atomically (see model_dir.write_dir_atomically: only an existing DANet or
    model directory is ever replaced, and only with `overwrite`)."""
    import orbax.checkpoint as ocp

    def fill(tmp: Path) -> None:
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(tmp / PARAMS_DIR, params)
        checkpointer.wait_until_finished()
        checkpointer.close()
        with open(tmp / ARCH_FILE, 'w') as f:
            json.dump(arch, f, indent=2)

    try:
        model_dir.write_dir_atomically(output_dir, fill, overwrite)
    except (FileExistsError, model_dir.ModelDirError) as e:
        raise ConversionError(str(e)) from e


def convert(checkpoint: str, output_dir: str, overwrite: bool = False) -> dict[str, Any]:
    """Full conversion; returns the architecture written to arch.json. Raises ConversionError on bad input."""
    state = load_generator_state(checkpoint)
    arch = infer_arch(state)
    params = state_to_params(state, arch)
    save_converted(params, arch, output_dir, overwrite)
    return arch


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit status (0 ok, 2 bad input)."""
    parser = argparse.ArgumentParser(
        prog='python -m convert.danet',
        description="Convert the official DANet checkpoint's generator ('G') to flax params + arch.json.")
    parser.add_argument('checkpoint', help="official DANet .pt file: a dict with 'G' and 'D' state dicts")
    parser.add_argument('output_dir', help='directory to create (params/ + arch.json); written atomically')
    parser.add_argument('--overwrite', action='store_true', help='replace output_dir if it is an existing model '
                        'directory (a folder holding anything else, or a file, is never replaced)')
    args = parser.parse_args(argv)
    if not os.path.isfile(args.checkpoint):
        print(f'error: {args.checkpoint}: no such file', file=sys.stderr)
        return 2
    try:
        arch = convert(args.checkpoint, args.output_dir, args.overwrite)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'wrote {args.output_dir}: UNetG wf={arch["wf"]} depth={arch["depth"]} in_chans={arch["in_chans"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
