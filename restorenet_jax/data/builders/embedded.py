"""The embedded default set: BSD-B-style (blurred, sharp) pairs made from scikit-image's bundled colour photos.

Needs no manual dir or network: only photos that ship inside the scikit-image wheel are used (the
network-fetched `skimage.data` images are never called). Per pair: a random square region of a photo at a random
scale (resized with PIL bicubic), blurred with `degradations.synthetic_blur` (+ a margin that is cut away again so
the blur at the crop edge sees real content), both quantised to uint8 PNG. Noise is not baked in: the pipeline adds
it on the fly. Train and test use different photos (the held-out split shares no content). Deterministic for the
parameters (all randomness from `np.random.default_rng([seed, split, photo, pair])`); the builder config name is a
hash of the parameters, so a changed config builds a new copy instead of reusing a stale one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable, Iterator

import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from restorenet_jax.data import degradations
from restorenet_jax.data.builders.common import PairedImageBuilder, encode_png, pair_features


def _skimage_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        if name == 'motorcycle':
            return skimage.data.stereo_motorcycle()[0]
        return getattr(skimage.data, name)()

    return load


# Whitelist of bundled colour photos (offline). Anything else is rejected before skimage is asked.
PHOTOS = {n: _skimage_photo(n) for n in ('astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle',
                                          'immunohistochemistry', 'retina', 'hubble_deep_field')}
_SPLIT_IDS = {'train': 0, 'test': 1}


@dataclasses.dataclass(eq=False)
class EmbeddedConfig(tfds.core.BuilderConfig):
    """Builder config carrying the build parameters as JSON (embedded params + blur config)."""

    params_json: str = '{}'


def embedded_builder_config(embedded_cfg: ml_collections.ConfigDict,
                            blur_cfg: ml_collections.ConfigDict) -> EmbeddedConfig:
    """Builder config for the given parameters; its name is a hash of them."""
    params = {'embedded': embedded_cfg.to_dict(), 'blur': blur_cfg.to_dict()}
    params_json = json.dumps(params, sort_keys=True, default=list)
    digest = hashlib.sha1(params_json.encode()).hexdigest()[:10]
    return EmbeddedConfig(name=f'p{digest}', description='Embedded set for these parameters.',
                          params_json=params_json)


def _names(csv: str) -> list[str]:
    names = [n.strip() for n in csv.split(',') if n.strip()]
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
        raise ValueError(f'unknown embedded photos {unknown}; available (bundled offline): {sorted(PHOTOS)}')
    return names


def make_pair(photo: np.ndarray, rng: np.random.Generator, emb: ml_collections.ConfigDict,
              blur_cfg: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
    """One (blurred, sharp) uint8 [S, S, 3] pair from a uint8 photo [H, W, 3]."""
    size = int(rng.integers(emb.min_size, emb.max_size + 1))
    padded = size + 2 * emb.margin
    h, w = photo.shape[:2]
    scale = float(rng.uniform(emb.min_scale, emb.max_scale))
    src = int(round(padded / scale))
    src = min(src, h, w)  # small photos: take the largest square instead (scale goes up)
    y = int(rng.integers(0, h - src + 1))
    x = int(rng.integers(0, w - src + 1))
    region = Image.fromarray(photo[y:y + src, x:x + src]).resize((padded, padded), Image.BICUBIC)
    sharp = np.asarray(region, np.float32) / 255.0  # [P, P, 3]
    blurred = degradations.synthetic_blur(sharp, rng, blur_cfg)
    m = emb.margin
    to_u8 = lambda a: np.clip(np.round(a[m:m + size, m:m + size] * 255.0), 0, 255).astype(np.uint8)  # noqa: E731
    return to_u8(blurred), to_u8(sharp)


class Embedded(PairedImageBuilder):
    """Embedded default set; built automatically on first use (no manual dir)."""

    # No fixed configs: callers pass `config=embedded_builder_config(...)` (see `pipeline.load_builder`).
    LAYOUT = '(no manual dir: built from scikit-image sample photos)'
    DESCRIPTION = 'Blurred/sharp pairs synthesised from scikit-image bundled colour photos.'

    def _info(self) -> tfds.core.DatasetInfo:
        if not isinstance(self.builder_config, EmbeddedConfig):
            raise ValueError('Embedded needs config=embedded_builder_config(embedded_cfg, blur_cfg)')
        return tfds.core.DatasetInfo(builder=self, description=self.DESCRIPTION, features=pair_features(),
                                     metadata=tfds.core.MetadataDict(params=json.loads(self.builder_config.params_json)))

    def find_pairs(self, manual_dir: str | Path) -> dict:
        raise NotImplementedError('the embedded set has no manual dir')

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        params = json.loads(self.builder_config.params_json)
        emb = ml_collections.ConfigDict(params['embedded'])
        blur = ml_collections.ConfigDict(params['blur'])
        return {
            'train': self._pairs('train', _names(emb.train_images), emb.train_pairs_per_image, emb, blur),
            'test': self._pairs('test', _names(emb.test_images), emb.test_pairs_per_image, emb, blur),
        }

    def _pairs(self, split: str, names: list[str], per_image: int, emb: ml_collections.ConfigDict,
               blur: ml_collections.ConfigDict) -> Iterator[tuple[str, dict]]:
        for p, name in enumerate(names):
            photo = PHOTOS[name]()[..., :3]
            for k in range(per_image):
                rng = np.random.default_rng([emb.seed, _SPLIT_IDS[split], p, k])
                blurred, sharp = make_pair(photo, rng, emb, blur)
                key = f'{split}/{name}_{k:04d}'
                yield key, {'input': encode_png(blurred), 'target': encode_png(sharp), 'name': key}
