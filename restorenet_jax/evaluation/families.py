"""Gain per noise family: the held-out split degraded with each noise model in turn, so that a report shows how a
model does on noise it was trained on and on noise it never saw (the families flagged `held_out`).

Each family's examples are `data.pipeline.make_eval_examples` with the data config's noise kind replaced by the
family (same photos, same seeds per example), in the kinds `kinds` (e.g. 'noise,blur_noise').
"""
from __future__ import annotations

import collections
from typing import Callable, Mapping, Sequence

import ml_collections
import numpy as np

from restorenet_jax.data import pipeline
from restorenet_jax.evaluation import scoring


def parse_list(spec: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] (empty entries dropped)."""
    return [s.strip() for s in str(spec).split(',') if s.strip()]


def family_data_config(data_cfg: ml_collections.ConfigDict, family: str, kinds: str) -> ml_collections.ConfigDict:
    """A copy of the data config whose eval examples carry the noise `family` in the input kinds `kinds`."""
    c = ml_collections.ConfigDict(data_cfg.to_dict())
    c.noise.kind = family
    c.eval_kinds = kinds
    return c


def score_families(predict: Callable[[np.ndarray], np.ndarray], data_cfg: ml_collections.ConfigDict,
                   families: Sequence[str], held_out: Sequence[str], *, kinds: str = 'noise', split: str = 'test',
                   seed: int = 0, limit: int | None = None) -> dict:
    """{family: {input_psnr, input_ssim, output_psnr, output_ssim, gain_db, count, held_out}} on the eval split.

    Args:
      predict: [H, W, 3] -> [H, W, 3] restoration (outputs clipped before scoring).
      data_cfg: the run's data config (datasets, eval crop); its noise kind is replaced per family.
      families: noise kinds to evaluate (data.degradations.NOISE_KINDS).
      held_out: the families the model was not trained on (flagged in the result).
      kinds: input kinds per example, comma-separated (data.transforms.KINDS).
    """
    out = {}
    for family in families:
        examples = pipeline.make_eval_examples(family_data_config(data_cfg, family, kinds), split=split, seed=seed,
                                               limit=limit)
        sums: collections.Counter = collections.Counter()
        for ex in examples:
            sums.update(scoring.score_one(predict, ex)[0])
        out[family] = {**scoring.summarize({'overall': sums})['overall'], 'held_out': family in held_out}
    return out


def format_families(per_family: Mapping[str, Mapping]) -> str:
    """A Markdown table of score_families' result."""
    lines = ['| noise family | n | input PSNR | output PSNR | gain dB | output SSIM | in training |',
             '|---|---|---|---|---|---|---|']
    for name, r in per_family.items():
        lines.append(f"| {name} | {r['count']} | {r['input_psnr']:.2f} | {r['output_psnr']:.2f} | "
                     f"{r['gain_db']:+.2f} | {r['output_ssim']:.4f} | {'held out' if r['held_out'] else 'yes'} |")
    return '\n'.join(lines)
