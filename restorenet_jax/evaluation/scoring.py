"""Scoring restored images: PSNR/SSIM of the degraded input and of the output, per dataset and input kind.

Used by the trainer (periodic eval, the final report) and the evaluate CLI. Examples are dicts with 'input',
'target' ([H, W, 3] float32 in [0, 1]), 'kind' and 'dataset' (as `data.pipeline.make_eval_examples` yields).
"""
from __future__ import annotations

import collections
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from restorenet_jax.evaluation import metrics

Predict = Callable[[np.ndarray], np.ndarray]  # [H, W, 3] -> [H, W, 3]
PSNR_CAP = 100.0  # dB given to an exact match (PSNR = inf), so that means stay finite and JSON-serialisable


SCORE_FIELDS = ("input_psnr", "input_ssim", "output_psnr", "output_ssim", "count")


def group_keys(example: Mapping) -> tuple[str, str]:
    """The two groups an example's scores are summed into: 'dataset/kind', and 'overall' ('overall_gt' for the
    'gt' kind, whose inputs equal their targets)."""
    kind = example.get("kind", "all")
    return f"{example.get('dataset', 'data')}/{kind}", "overall" if kind != "gt" else "overall_gt"


def score_one(predict: Predict, example: Mapping) -> tuple[dict, np.ndarray]:
    """(scores of one example: SCORE_FIELDS with count 1, the clipped output). PSNRs are capped at PSNR_CAP."""
    out = np.clip(predict(example["input"]), 0.0, 1.0)
    target = example["target"]
    row = {"input_psnr": min(metrics.psnr(example["input"], target), PSNR_CAP),
           "input_ssim": metrics.ssim(example["input"], target),
           "output_psnr": min(metrics.psnr(out, target), PSNR_CAP),
           "output_ssim": metrics.ssim(out, target), "count": 1}
    return row, out


def score_examples(predict: Predict, examples: Iterable[Mapping], on_output: Callable | None = None) -> dict:
    """Mean PSNR/SSIM of input and output against the target, overall and per 'dataset/kind'.

    Args:
      predict: the restoration function (outputs are clipped to [0, 1] before scoring).
      examples: eval examples.
      on_output: optional callback(example, output) (e.g. to collect sample strips).
    Returns:
      {'overall': {...}, 'groups': {'dataset/kind': {...}}} where each {...} has input_psnr, input_ssim,
      output_psnr, output_ssim, gain_db and count. 'overall' excludes the 'gt' kind (identity inputs).
    """
    sums: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for ex in examples:
        row, out = score_one(predict, ex)
        if on_output is not None:
            on_output(ex, out)
        for key in group_keys(ex):
            sums[key].update(row)
    return summarize(sums)


def summarize(sums: Mapping[str, Mapping[str, float]]) -> dict:
    """score_examples' result from per-group sums of SCORE_FIELDS (groups with no examples are left out)."""
    sums = {k: v for k, v in sums.items() if v.get("count", 0) > 0}
    if not sums:
        raise ValueError("no evaluation examples")
    # GT-kind inputs equal their targets (input PSNR at the cap): they are scored in their own group, and the
    # overall figure covers the degraded kinds only (unless nothing else was evaluated).
    overall = sums.pop("overall", None) or sums["overall_gt"]
    sums.pop("overall_gt", None)
    return {"overall": _means(overall), "groups": {k: _means(v) for k, v in sorted(sums.items())}}


def _means(total: Mapping[str, float]) -> dict:
    n = total["count"]
    out = {k: float(total[k] / n) for k in ("input_psnr", "input_ssim", "output_psnr", "output_ssim")}
    out["gain_db"] = out["output_psnr"] - out["input_psnr"]
    out["count"] = int(round(n))
    return out


def sample_strip(inp: np.ndarray, out: np.ndarray, target: np.ndarray, gap: int = 4) -> np.ndarray:
    """input | output | target side by side on white, [H, 3W + 2*gap, 3] float32."""
    h, w = target.shape[:2]
    strip = np.ones((h, 3 * w + 2 * gap, 3), np.float32)
    for i, img in enumerate((inp, out, target)):
        strip[:, i * (w + gap): i * (w + gap) + w] = np.clip(img, 0.0, 1.0)
    return strip


def stack_rows(rows: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Strips of possibly different sizes one under another on white."""
    width = max(r.shape[1] for r in rows)
    height = sum(r.shape[0] for r in rows) + gap * (len(rows) - 1)
    canvas = np.ones((height, width, 3), np.float32)
    y = 0
    for r in rows:
        canvas[y: y + r.shape[0], : r.shape[1]] = r
        y += r.shape[0] + gap
    return canvas


def format_table(result: Mapping) -> str:
    """A Markdown table of score_examples' result."""
    lines = ["| group | n | input PSNR | output PSNR | gain dB | input SSIM | output SSIM |",
             "|---|---|---|---|---|---|---|"]
    for name, r in [*result["groups"].items(), ("overall", result["overall"])]:
        lines.append(f"| {name} | {r['count']} | {r['input_psnr']:.2f} | {r['output_psnr']:.2f} | "
                     f"{r['gain_db']:+.2f} | {r['input_ssim']:.4f} | {r['output_ssim']:.4f} |")
    return "\n".join(lines)


# ---- Several methods on the same examples (the evaluate CLI's comparison table) ----

METHOD_LABELS = {"input": "degraded input", "deblur": "deblur backbone", "denoise": "denoise backbone",
                 "serial": "serial deblur(denoise(x))", "restorenet": "RestoreNet", "model": "model"}
DEGRADED = "degraded"  # pseudo-kind: mean over every kind except 'gt'


def score_methods(predict: Callable[[np.ndarray], Mapping[str, np.ndarray]], methods: Sequence[str],
                  examples: Iterable[Mapping], metric_kw: Mapping | None = None) -> dict:
    """PSNR/SSIM of the degraded input and of every method's output, per dataset, input kind and image.

    Args:
      predict: [H, W, 3] -> {method: [H, W, 3]} for every name in `methods`, all from one call (so that shared
        work, such as RestoreNet's backbones, runs once); outputs are clipped to [0, 1] before scoring.
      methods: the method names, in table order.
      examples: eval examples ('input', 'target', 'kind', 'dataset', 'name').
      metric_kw: extra keyword arguments of `metrics.psnr` / `metrics.ssim` (crop_border, y_channel, quantize;
        `ssim3d` goes to ssim only).
    Returns:
      {'methods': ['input', *methods], 'kinds': [...], 'groups': {dataset: {kind: {method: {'psnr', 'ssim',
      'count'}}}}, 'images': [{'dataset', 'kind', 'name', 'size' ([H, W]), 'scores': {method: {'psnr', 'ssim'}}}]}. Each dataset
      also has the pseudo-kind 'degraded' (all kinds but 'gt') when it has one. PSNRs are capped at PSNR_CAP
      per image.
    """
    metric_kw = dict(metric_kw or {})
    ssim3d = metric_kw.pop("ssim3d", False)
    methods = ["input", *methods]
    images, kinds = [], []
    # sums[dataset][kind][method] -> Counter of psnr, ssim, count
    sums: dict = collections.defaultdict(
        lambda: collections.defaultdict(lambda: collections.defaultdict(collections.Counter)))
    for ex in examples:
        target = ex["target"]
        predicted = predict(ex["input"])
        outputs = {"input": ex["input"], **{m: np.clip(predicted[m], 0.0, 1.0) for m in methods[1:]}}
        scores = {m: {"psnr": min(metrics.psnr(y, target, **metric_kw), PSNR_CAP),
                      "ssim": metrics.ssim(y, target, ssim3d=ssim3d, **metric_kw)} for m, y in outputs.items()}
        kind, dataset = ex.get("kind", "all"), ex.get("dataset", "data")
        if kind not in kinds:
            kinds.append(kind)
        images.append({"dataset": dataset, "kind": kind, "name": ex.get("name", ""),
                       "size": list(target.shape[:2]), "scores": scores})
        for k in (kind, DEGRADED) if kind != "gt" else (kind,):
            for m, s in scores.items():
                sums[dataset][k][m].update({**s, "count": 1})
    if not images:
        raise ValueError("no evaluation examples")
    groups = {}
    for dataset, by_kind in sums.items():
        order = [k for k in (*kinds, DEGRADED) if k in by_kind]
        groups[dataset] = {k: {m: {"psnr": float(by_kind[k][m]["psnr"] / by_kind[k][m]["count"]),
                                   "ssim": float(by_kind[k][m]["ssim"] / by_kind[k][m]["count"]),
                                   "count": int(by_kind[k][m]["count"])} for m in methods} for k in order}
    return {"methods": methods, "kinds": kinds, "groups": groups, "images": images}


def format_method_tables(result: Mapping) -> str:
    """Markdown: per dataset, one row per method and one 'PSNR / SSIM' column per input kind."""
    blocks = []
    for dataset, by_kind in result["groups"].items():
        kinds = list(by_kind)
        counts = ", ".join(f"{k} {by_kind[k]['input']['count']}" for k in kinds if k != DEGRADED)
        lines = [f"### {dataset} (images: {counts})", "",
                 "| method | " + " | ".join(f"{k} PSNR / SSIM" for k in kinds) + " |",
                 "|---|" + "---|" * len(kinds)]
        for m in result["methods"]:
            cells = [f"{by_kind[k][m]['psnr']:.2f} / {by_kind[k][m]['ssim']:.4f}" for k in kinds]
            lines.append(f"| {METHOD_LABELS.get(m, m)} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
