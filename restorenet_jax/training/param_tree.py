"""Sub-trees of a parameter tree: the leaves of some groups only (the trainable part), and putting them back.

The optimiser moments and the EMA copy cover only the groups that train in some phase; for RestoreNet's stage
'extra' that is the extra network (~33 M of RestoreNet-w64's 339 M parameters at width 64), not the frozen
backbones. Trees are nested dicts, as Flax parameters are.
"""
from __future__ import annotations

from typing import Any, Mapping


def prune(tree: Mapping[str, Any], mask: Mapping[str, Any]) -> dict:
    """The leaves of `tree` where `mask` (same structure, bool leaves) is True, as a nested dict; sub-dicts left
    empty are dropped."""
    out = {}
    for key, value in tree.items():
        keep = mask[key]
        if isinstance(value, Mapping):
            sub = prune(value, keep)
            if sub:
                out[key] = sub
        elif keep:
            out[key] = value
    return out


def overlay(tree: Mapping[str, Any], part: Mapping[str, Any]) -> dict:
    """`tree` with the leaves present in `part` (a pruned tree of the same structure) replaced by those of `part`."""
    out = dict(tree)
    for key, value in part.items():
        if key not in tree:
            raise KeyError(f"{key!r} of the sub-tree is not in the tree")
        out[key] = overlay(tree[key], value) if isinstance(value, Mapping) else value
    return out
