"""Dataset specs (`NAME[/CONFIG][@SPLIT][:WEIGHT]`) -> prepared TFDS builders -> random-access data sources."""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
from pathlib import Path

import ml_collections
from absl import logging
import tensorflow_datasets as tfds

from restorenet_jax.data.builders import BUILDERS, canonical_name, embedded_builder_config


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One entry of a dataset mix."""

    name: str  # BUILDERS key
    config: str | None = None  # TFDS builder config (e.g. 'blur_gamma', 'j')
    split: str | None = None  # None: the caller's default split
    weight: float = 1.0  # relative sampling weight in a training mix

    @property
    def label(self) -> str:
        """Name used in logs and eval tables, e.g. 'gopro_large/blur_gamma'."""
        return self.name + (f'/{self.config}' if self.config else '')


def parse_specs(text: str) -> list[DatasetSpec]:
    """Parse 'gopro_large/blur_gamma:2,realblur_j@test:1' into DatasetSpecs (weights must be >= 0, sum > 0)."""
    specs = []
    for item in (t.strip() for t in text.split(',')):
        if not item:
            continue
        weight = 1.0
        if ':' in item:
            item, w = item.rsplit(':', 1)
            weight = float(w)
        split = None
        if '@' in item:
            item, split = item.split('@', 1)
        config = None
        if '/' in item:
            item, config = item.split('/', 1)
        if weight < 0:
            raise ValueError(f'negative weight in dataset spec {text!r}')
        specs.append(DatasetSpec(canonical_name(item), config, split, weight))
    if not specs or sum(s.weight for s in specs) <= 0:
        raise ValueError(f'dataset spec {text!r} names no dataset with a positive weight')
    return specs


def load_builder(spec: DatasetSpec, data_cfg: ml_collections.ConfigDict,
                 prepare_embedded: bool = True) -> tfds.core.GeneratorBasedBuilder:
    """The builder for `spec` in `data_cfg.data_dir`; the embedded set is built on first use.

    Raises FileNotFoundError with the prepare_data command when a real dataset has not been prepared.
    """
    data_dir = str(Path(data_cfg.data_dir).expanduser())
    cls = BUILDERS[spec.name]
    if spec.name == 'embedded':
        config = embedded_builder_config(data_cfg.embedded, data_cfg.blur)
        builder = cls(data_dir=data_dir, file_format='array_record', config=config)
        if prepare_embedded and not builder.is_prepared():
            with _exclusive_lock(Path(data_dir) / f'.embedded-{config.name}.lock'):
                # Another process (a second host process, a parallel test worker) may have built it meanwhile.
                builder = cls(data_dir=data_dir, file_format='array_record', config=config)
                if not builder.is_prepared():
                    # TFDS prints "Downloading and preparing dataset ..." to stdout: misleading here (the photos
                    # ship with scikit-image, nothing is downloaded), so it is replaced by one accurate line.
                    logging.warning('building the embedded data set in %s (first use only; nothing is downloaded)',
                                    data_dir)
                    with contextlib.redirect_stdout(io.StringIO()):
                        builder.download_and_prepare()
        return builder
    builder = cls(data_dir=data_dir, file_format='array_record', config=spec.config)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f'dataset {spec.label} is not prepared in {data_dir}; run: python -m restorenet_jax.prepare_data '
            f'{spec.label} --manual-dir DIR --data-dir {data_dir}')
    return builder


@contextlib.contextmanager
def _exclusive_lock(path: Path):
    """An advisory lock held across processes on this host while the body runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pair_kind(spec: DatasetSpec) -> str:
    """'blur' (input = blurred target), 'noise' (input = real noisy target) or 'clean' (target only) for a dataset."""
    return BUILDERS[spec.name].PAIR_KIND


def open_source(spec: DatasetSpec, split: str, data_cfg: ml_collections.ConfigDict):
    """Random-access source of raw records {'input': PNG bytes, 'target': PNG bytes, 'name': bytes}."""
    builder = load_builder(spec, data_cfg)
    split = spec.split or split
    if split not in builder.info.splits:
        raise KeyError(f'{spec.label} has no split {split!r}; it has {sorted(builder.info.splits)}')
    # Skip TFDS' own decoding: the pipeline decodes, so a corrupt image can be skipped instead of crashing.
    skip = tfds.decode.SkipDecoding()
    return builder.as_data_source(split, decoders={'input': skip, 'target': skip})
