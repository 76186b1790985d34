"""The one table between official PyTorch state_dict keys and Flax parameter paths (and tensor layouts).

Rules (both directions):
  `deblur.` / `denoise.`            -> `deblur/` / `denoise/` (RestoreNet and StraightNet backbones)
  `<name>_supple...`                -> `extra/<name>...`       (RestoreNet's supple = extra network)
  `<name>.<i>.<j>`                  -> `<name>_<i>_<j>`        (encoders.L.B, decoders.L.B, middle_blks.B, downs.L, se.1)
  `ups.<L>.0`                       -> `ups_<L>`               (the 1x1 conv inside the ups Sequential)
  `normN.weight`                    -> `normN/scale`;  other `.weight` -> `/kernel`;  `bias`, `beta`, `gamma` kept
Layouts: conv weight (O, I/groups, kh, kw) <-> kernel (kh, kw, I/groups, O); beta/gamma (1, C, 1, 1) <-> (C,).
"""
from __future__ import annotations

import collections
import re
from typing import Any, Mapping

import numpy as np

_INDEXED = re.compile(r"^(.*?)((?:_\d+)+)$")
_BACKBONES = ("deblur", "denoise")
_SUPPLE = "_supple"


def torch_key_to_flax_path(key: str) -> tuple[str, ...]:
    """`encoders.0.1.norm1.weight` -> ('encoders_0_1', 'norm1', 'scale')."""
    parts = key.split(".")
    path: list[str] = []
    i = 0
    while i < len(parts):
        name = parts[i]
        j = i + 1
        indices = []
        while j < len(parts) and parts[j].isdigit():
            indices.append(parts[j])
            j += 1
        if name.endswith(_SUPPLE) and not path:
            path.append("extra")
            name = name[: -len(_SUPPLE)]
        if name == "ups" and indices:
            if indices[-1] != "0":
                raise KeyError(f"unexpected ups sub-module in {key!r}")
            indices = indices[:-1]
        is_leaf = j == len(parts)
        if is_leaf and name == "weight":
            name = "scale" if path and path[-1].startswith("norm") else "kernel"
        path.append("_".join([name, *indices]))
        i = j
    return tuple(path)


def flax_path_to_torch_key(path: tuple[str, ...]) -> str:
    """Inverse of `torch_key_to_flax_path`."""
    parts: list[str] = []
    supple = False
    for depth, comp in enumerate(path):
        if depth == 0 and comp == "extra":
            supple = True
            continue
        is_leaf = depth == len(path) - 1
        if is_leaf and comp in ("kernel", "scale"):
            parts.append("weight")
            continue
        m = _INDEXED.match(comp)
        name, indices = (m.group(1), m.group(2).strip("_").split("_")) if m else (comp, [])
        if name == "ups" and indices:
            indices = indices + ["0"]
        if supple and not parts:
            name += _SUPPLE
        parts.extend([name, *indices])
    return ".".join(parts)


def torch_to_flax_value(key: str, value: np.ndarray) -> np.ndarray:
    """Converts one tensor's layout (NCHW conv weights -> HWIO kernels; (1,C,1,1) -> (C,))."""
    value = np.asarray(value, dtype=np.float32)
    leaf = key.rsplit(".", 1)[-1]
    if leaf in ("beta", "gamma"):
        return value.reshape(-1)
    if value.ndim == 4:
        return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    return value


def flax_to_torch_value(path: tuple[str, ...], value: Any) -> np.ndarray:
    """Inverse of `torch_to_flax_value`."""
    value = np.asarray(value, dtype=np.float32)
    if path[-1] in ("beta", "gamma"):
        return value.reshape(1, -1, 1, 1)
    if value.ndim == 4:
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
    return value


def flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Nested dict -> {path tuple: leaf}."""
    out: dict[tuple[str, ...], Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


def unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict:
    """{path tuple: leaf} -> nested dict."""
    tree: dict = {}
    for path, v in flat.items():
        node = tree
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = v
    return tree


def state_dict_to_params(state_dict: Mapping[str, Any]) -> dict:
    """An official state_dict ({key: array}) -> a Flax params tree of float32 numpy arrays."""
    return unflatten({torch_key_to_flax_path(k): torch_to_flax_value(k, v) for k, v in state_dict.items()})


def params_to_state_dict(params: Mapping[str, Any]) -> "collections.OrderedDict[str, np.ndarray]":
    """A Flax params tree -> an official-layout state_dict of float32 numpy arrays."""
    return collections.OrderedDict(
        (flax_path_to_torch_key(p), flax_to_torch_value(p, v)) for p, v in flatten(params).items())


def expected_shapes(params: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Official key -> torch shape for a (possibly abstract) params tree."""
    out = {}
    for p, v in flatten(params).items():
        shape = tuple(v.shape)
        if p[-1] in ("beta", "gamma"):
            shape = (1, shape[0], 1, 1)
        elif len(shape) == 4:
            shape = (shape[3], shape[2], shape[0], shape[1])
        out[flax_path_to_torch_key(p)] = shape
    return out
