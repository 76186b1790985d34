"""`restorenet-convert`: the checkpoint converters as one command.

    restorenet-convert to-flax Baseline-GoPro-width64.pth models/gopro64 --tlc    (= python -m convert.torch_to_flax)
    restorenet-convert to-torch models/gopro64 back.pth                          (= python -m convert.flax_to_torch)
    restorenet-convert danet DANet.pt models/danet                               (= python -m convert.danet)

Each subcommand takes the arguments of its module; `restorenet-convert SUBCOMMAND --help` lists them.
"""
from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence


def _commands() -> dict[str, tuple[str, Callable[[Optional[Sequence[str]]], int]]]:
    from restorenet_jax.convert import danet, flax_to_torch, torch_to_flax

    return {"to-flax": ("official PyTorch checkpoint -> model directory", torch_to_flax.main),
            "to-torch": ("model directory -> official PyTorch checkpoint", flax_to_torch.main),
            "danet": ("official DANet checkpoint -> DANet generator directory", danet.main)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Dispatches to the subcommand's own `main`; returns its exit status (2 for an unknown subcommand)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nsubcommands:\n" + "\n".join(f"  {k:9s} {v[0]}" for k, v in commands.items()))
        return 0 if argv else 2
    if argv[0] not in commands:
        print(f"restorenet-convert: unknown subcommand {argv[0]!r}; expected one of {', '.join(commands)}",
              file=sys.stderr)
        return 2
    try:
        import torch  # noqa: F401  (every converter reads or writes PyTorch checkpoints)
        has_torch = True
    except ImportError:
        has_torch = False
    if not has_torch and not {"-h", "--help"} & set(argv[1:]):
        # One line instead of the converters' ModuleNotFoundError.
        print(f"restorenet-convert {argv[0]}: needs PyTorch, which is not installed: "
              "pip install 'restorenet-jax[convert]'", file=sys.stderr)
        return 2
    return commands[argv[0]][1](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
