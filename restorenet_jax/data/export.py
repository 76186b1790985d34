"""Export a fixed degraded copy of the configured training mix: PNG pairs + manifest.json (kind per file).

    python -m restorenet_jax.export_degraded --config configs/data.py --out exported/ [--split train] [--seed 0]
    python -m restorenet_jax.export_degraded --config configs/data.py --config.ratio=8:4:4:1 --out exported/

The original RestoreNet precomputed its degraded data; this reproduces that workflow exactly: every source example
of each dataset in `config.datasets` (in file order) gets one input kind drawn from `config.ratio` and its
degradation, from `np.random.default_rng([seed, dataset_index, example_index])`, at full size (crops and flips stay
a training-time augmentation). The training split is brightness-filtered like the pipeline; other splits are not.
Writes `OUT/<dataset>/<split>/{input,target}/<index>.png` and `OUT/manifest.json`.
"""
from __future__ import annotations

import json
from pathlib import Path

import ml_collections
import numpy as np
from absl import logging
from PIL import Image
from tqdm import tqdm

from restorenet_jax.data import sources, transforms

def _save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)).save(path)


def export(data_cfg: ml_collections.ConfigDict, out_dir: str | Path, split: str | None = None, seed: int = 0,
           limit: int = 0) -> dict:
    """Write the degraded copy into out_dir and return the manifest (also saved as out_dir/manifest.json)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f'{out_dir} is not empty')
    split = split or data_cfg.train_split
    probs = transforms.parse_ratio(data_cfg.ratio)
    threshold = data_cfg.brightness_threshold if split == data_cfg.train_split else -1.0
    entries, skipped = [], {'dark': 0, 'corrupt': 0}
    for d, spec in enumerate(sources.parse_specs(data_cfg.datasets)):
        source = sources.open_source(spec, split, data_cfg)
        n = min(limit, len(source)) if limit else len(source)
        folder = Path(spec.label.replace('/', '_')) / (spec.split or split)
        for i in tqdm(range(n), desc=f'export {spec.label}', unit='img'):
            record = source[i]
            pair = transforms.decode_or_skip(record, data_cfg.on_corrupt, f'{spec.label} example {i}')
            if pair is None:
                skipped['corrupt'] += 1
                continue
            inp, tgt = pair
            if transforms.is_dark(tgt, threshold):
                skipped['dark'] += 1
                continue
            rng = np.random.default_rng([seed, d, i])
            kind = transforms.draw_kind(rng, probs)
            x = transforms.degrade(inp, tgt, kind, sources.pair_kind(spec), rng, data_cfg)
            entry = {'input': str(folder / 'input' / f'{i:06d}.png'), 'target': str(folder / 'target' / f'{i:06d}.png'),
                     'kind': kind, 'dataset': spec.label, 'name': record['name'].decode()}
            _save_png(out_dir / entry['input'], x)
            _save_png(out_dir / entry['target'], tgt)
            entries.append(entry)
    logging.info('exported %d pairs; skipped %s', len(entries), skipped)
    manifest = {'split': split, 'seed': seed, 'ratio': data_cfg.ratio, 'skipped': skipped,
                'config': json.loads(data_cfg.to_json_best_effort()), 'entries': entries}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'manifest.json').write_text(json.dumps(manifest, indent=1))
    return manifest
