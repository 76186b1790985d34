"""grain input pipeline: dataset mix, brightness filter, paired augmentation, batching; the input kinds on the host
or (default) on the device.

Training (per data shard, per dataset of the mix): source records -> the shard (`ds[shard::num_shards]`, disjoint;
one shard per process unless data.num_shards says otherwise) -> seeded shuffle, a fresh order each epoch -> infinite
repeat -> per-record `random_map` (decode, filter, `crops_per_read` crops with flip/rot90, all uint8; rejected
records become None, which grain drops) -> [crops of one read split apart and window-shuffled] -> weighted
`IterDataset.mix` -> batch.

Where the four input kinds are made is `data.degrade_on` ('auto': 'device' on an accelerator, 'host' on CPUs):
  'device'  batches hold the uint8 crops ({'target', 'degraded', 'pair_kind'}); the jitted training step draws
            each example's kind and degradation with `device_degrade.degrade` (see training.step). The host never
            touches a float.
  'host'    the reference path: each example's kind is drawn and degraded here in numpy
            ({'input', 'target'} float32). DANet's learned noise is only available here, so it always uses it.
Augmentation runs before degradation so the noise stays i.i.d. per pixel. Everything random derives from the seed
(and the element index), so two runs give identical batches and `get_state()/set_state()` (or
`grain.checkpoint.CheckpointSave/Restore` through orbax) resume exactly.

Eval: every source example, in file order, in each configured kind (`eval_kinds`), optionally centre-cropped;
degraded on the host with noise seeded by (seed, dataset, example, kind), whatever `degrade_on` says (a fixed set
of examples, made once, which every process of a multi-process run gets identical). No brightness filter (the
seed validated on dark images too).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Sequence

import grain
import jax
import ml_collections
import numpy as np
from absl import flags, logging

from restorenet_jax.data import device_degrade, sources, transforms
from restorenet_jax.data.transforms import KINDS

DEGRADE_ON = ('auto', 'device', 'host')


@dataclasses.dataclass
class DataStats:
    """In-process counters (with worker processes each worker counts for itself and logs its own warnings)."""

    seen: int = 0  # records read
    dark: int = 0  # excluded by the brightness filter
    corrupt: int = 0  # skipped: undecodable or input/target mismatch
    small: int = 0  # skipped: smaller than the crop (small_images == 'skip')
    # Examples produced per kind (host degradation only: on the device the kinds are drawn in the training step).
    kinds: dict = dataclasses.field(default_factory=lambda: {k: 0 for k in KINDS})


def degrades_on_device(data_cfg: ml_collections.ConfigDict) -> bool:
    """True when training batches leave the host as uint8 crops and the training step makes the input kinds.

    That is data_cfg.degrade_on == 'device' (or 'auto' with an accelerator as JAX's default backend) and the device
    has the configured noise and blur models (a config asking for others on the device gets the host path, with a
    log line).
    """
    where = data_cfg.get('degrade_on', 'host')
    if where not in DEGRADE_ON:
        raise ValueError(f'data.degrade_on must be one of {DEGRADE_ON}, got {where!r}')
    if where == 'auto':
        # On a CPU-only machine the "device" is the same cores, and XLA's CPU code for the camera pipeline and the
        # blur is several times slower than numpy's (the demo batch: ~120 ms against ~25 ms).
        where = 'host' if jax.default_backend() == 'cpu' else 'device'
    if where == 'host':
        return False
    if data_cfg.noise.kind not in device_degrade.NOISE_KINDS or \
            data_cfg.blur.kind not in device_degrade.device_blur_kinds():
        logging.info('noise %r / blur %r: degrading on the host (the device has noise %s, blur %s)',
                     data_cfg.noise.kind, data_cfg.blur.kind, device_degrade.NOISE_KINDS,
                     device_degrade.device_blur_kinds())
        return False
    return True


def _derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _record_name(record: dict) -> str:
    name = record.get('name', b'?')
    return name.decode() if isinstance(name, bytes) else str(name)


class _TrainExample:
    """Record + rng -> one example (crops_per_read == 1) or a list of `crops_per_read` examples, or None when
    filtered/skipped. An example is {'target', 'degraded' uint8 [crop, crop, 3], 'pair_kind' int32} on the
    device path, {'input', 'target' float32 [crop, crop, 3]} on the host path."""

    def __init__(self, data_cfg: ml_collections.ConfigDict, pair_kind: str, label: str, epoch_len: int,
                 stats: DataStats, on_device: bool):
        self.cfg, self.pair_kind, self.label, self.stats = data_cfg, pair_kind, label, stats
        self.probs = transforms.parse_ratio(data_cfg.ratio)
        self.epoch_len = epoch_len
        self.rejected_in_row = 0
        self.on_device = on_device
        self.pair_code = np.int32(device_degrade.PAIR_KINDS.index(pair_kind))
        self.crops = crops_per_read(data_cfg)

    def _reject(self) -> None:
        # A whole epoch without a usable example would make the infinite iterator spin forever.
        self.rejected_in_row += 1
        if self.rejected_in_row > self.epoch_len:
            raise ValueError(f'{self.label}: no usable example in a whole epoch (all dark, corrupt or too small)')

    def __call__(self, record: dict, rng: np.random.Generator) -> dict | None:
        cfg, stats = self.cfg, self.stats
        stats.seen += 1
        pair = transforms.decode_or_skip(record, cfg.on_corrupt, f'{self.label} {_record_name(record)}',
                                         as_float=False)
        if pair is None:
            stats.corrupt += 1
            return self._reject()
        inp, tgt = pair
        if transforms.is_dark(tgt, cfg.brightness_threshold):
            stats.dark += 1
            if stats.dark & (stats.dark - 1) == 0:  # log at 1, 2, 4, 8... to keep logs short
                logging.info('%s: %d examples excluded so far by the brightness filter (V <= %g), %d read',
                             self.label, stats.dark, cfg.brightness_threshold, stats.seen)
            return self._reject()
        if cfg.small_images == 'skip' and min(tgt.shape[:2]) < cfg.crop_size:
            stats.small += 1
            return self._reject()
        self.rejected_in_row = 0
        if self.crops == 1:
            return self._example(inp, tgt, rng)
        return [self._example(inp, tgt, rng) for _ in range(self.crops)]  # a list: no copy into a stacked array

    def _example(self, inp: np.ndarray, tgt: np.ndarray, rng: np.random.Generator) -> dict:
        cfg = self.cfg
        inp, tgt = transforms.random_crop_pair(inp, tgt, cfg.crop_size, rng, cfg.small_images)
        inp, tgt = transforms.random_flip_rot(inp, tgt, rng, cfg.random_flip, cfg.random_rot90)
        if self.on_device:
            return {'target': tgt, 'degraded': inp, 'pair_kind': self.pair_code}
        kind = transforms.draw_kind(rng, self.probs)
        self.stats.kinds[kind] += 1
        tgt = transforms.to_float(tgt)
        x = transforms.degrade(transforms.to_float(inp), tgt, kind, self.pair_kind, rng, cfg)
        return {'input': np.asarray(x, np.float32), 'target': tgt}


class _SplitCrops(grain.experimental.FlatMapTransform):
    """The list of one read's crops -> separate examples."""

    def __init__(self, crops: int):
        self.max_fan_out = crops

    def flat_map(self, element: list[dict]) -> list[dict]:
        return element


def crops_per_read(data_cfg: ml_collections.ConfigDict) -> int:
    """Training crops cut from each decoded record (data.crops_per_read, at least 1)."""
    crops = int(data_cfg.get('crops_per_read', 1))
    if crops < 1:
        raise ValueError(f'data.crops_per_read must be >= 1, got {crops}')
    return crops


def read_options(data_cfg: ml_collections.ConfigDict) -> grain.ReadOptions:
    """The read-ahead of the decode-and-crop stage: data.read_threads threads, and a buffer of records that holds
    about data.read_ahead_crops crops (at least one record per thread)."""
    threads = int(data_cfg.get('read_threads', 4))
    if threads < 1:
        raise ValueError(f'data.read_threads must be >= 1, got {threads}')
    records = -(-int(data_cfg.get('read_ahead_crops', 128)) // crops_per_read(data_cfg))
    return grain.ReadOptions(num_threads=threads, prefetch_buffer_size=max(threads, records))


def make_train_iterator(data_cfg: ml_collections.ConfigDict, *, seed: int, global_batch_size: int,
                        process_index: int = 0, process_count: int = 1,
                        stats: DataStats | None = None) -> grain.DatasetIterator:
    """Infinite iterator of training batches for this process.

    Yields, with b = global_batch_size // process_count and H = W = data_cfg.crop_size, when
    `degrades_on_device(data_cfg)`: {'target': [b, H, W, 3] uint8, 'degraded': [b, H, W, 3] uint8 (the record's
    blurred or noisy image, or the target again for clean records), 'pair_kind': [b] int32 codes into
    device_degrade.PAIR_KINDS}; otherwise {'input': [b, H, W, 3] float32, 'target': [b, H, W, 3] float32} in
    [0, 1]. The iterator has get_state()/set_state() and works with grain.checkpoint.CheckpointSave/
    CheckpointRestore. `stats` (optional) receives in-process counters.

    The data is split into `data_cfg.num_shards` disjoint shards (0: one per process), each with its own seeded
    order and a slice of every global batch; a process reads the shards of its share and joins their slices. With
    num_shards fixed, the global batches are the same whatever the number of processes.
    """
    num_shards = data_cfg.get('num_shards', 0) or process_count
    if num_shards % process_count:
        raise ValueError(f'data.num_shards {num_shards} is not a multiple of the {process_count} processes')
    if global_batch_size % num_shards:
        raise ValueError(f'global batch {global_batch_size} not divisible by {num_shards} data shards')
    if data_cfg.crop_size <= 0:
        raise ValueError('training needs crop_size > 0 (a batch needs one image size)')
    if data_cfg.on_corrupt not in ('skip', 'raise'):
        raise ValueError(f"on_corrupt must be 'skip' or 'raise', got {data_cfg.on_corrupt!r}")
    stats = stats if stats is not None else DataStats()
    on_device = degrades_on_device(data_cfg)
    per_process = num_shards // process_count
    shards = range(process_index * per_process, (process_index + 1) * per_process)
    iterators = [_shard_iterator(data_cfg, seed, global_batch_size // num_shards, shard, num_shards, stats,
                                 on_device) for shard in shards]
    return iterators[0] if len(iterators) == 1 else _JoinedShards(iterators)


def _shard_iterator(data_cfg: ml_collections.ConfigDict, seed: int, batch_size: int, shard: int, num_shards: int,
                    stats: DataStats, on_device: bool) -> grain.DatasetIterator:
    datasets, weights = [], []
    crops = crops_per_read(data_cfg)
    for i, spec in enumerate(sources.parse_specs(data_cfg.datasets)):
        if spec.weight == 0:
            continue
        source = sources.open_source(spec, data_cfg.train_split, data_cfg)
        ds = grain.MapDataset.source(source)[shard::num_shards]
        if len(ds) == 0:
            raise ValueError(f'{spec.label}: data shard {shard} of {num_shards} gets no examples')
        logging.info('%s: %d examples in data shard %d/%d', spec.label, len(ds), shard, num_shards)
        ds = ds.seed(_derive_seed(seed, i, shard))
        if data_cfg.shuffle:
            ds = ds.shuffle()  # grain reshuffles each epoch of the repeat with a per-epoch seed
        ds = ds.repeat()
        ds = ds.random_map(_TrainExample(data_cfg, sources.pair_kind(spec), spec.label, len(source), stats,
                                         on_device)).to_iter_dataset(read_options(data_cfg))
        if crops > 1:
            # Several crops per decode make a large frame's decoding cost shared; the window shuffle spreads them
            # over several batches (and is replayed exactly on restore).
            ds = grain.experimental.FlatMapIterDataset(ds, _SplitCrops(crops))
            ds = grain.experimental.WindowShuffleIterDataset(ds, window_size=int(data_cfg.crop_shuffle_window),
                                                             seed=_derive_seed(seed, i, shard, 1))
        datasets.append(ds)
        weights.append(spec.weight)
    ds = datasets[0] if len(datasets) == 1 else grain.IterDataset.mix(datasets, weights)
    ds = ds.batch(batch_size, drop_remainder=True)
    if data_cfg.num_workers > 0:
        if not flags.FLAGS.is_parsed():
            # grain's worker start-up reads its absl flags; outside an absl app (tests, notebooks) take defaults.
            flags.FLAGS.mark_as_parsed()
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=data_cfg.num_workers,
                                                         per_worker_buffer_size=data_cfg.worker_buffer_size))
    return iter(ds)


class _JoinedShards(grain.DatasetIterator):
    """Several shards' batch iterators read by one process: their slices joined in shard order; the state is
    every shard's state (checkpointed by grain's handler like any iterator)."""

    def __init__(self, iterators: list[grain.DatasetIterator]):
        super().__init__()
        self._iterators = iterators

    def __next__(self) -> dict:
        parts = [next(it) for it in self._iterators]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def get_state(self) -> dict:
        return {'shards': [it.get_state() for it in self._iterators]}

    def set_state(self, state: dict) -> None:
        if len(state['shards']) != len(self._iterators):
            raise ValueError(f"the checkpointed data state has {len(state['shards'])} shards for this process, "
                             f'the config gives {len(self._iterators)}')
        for it, s in zip(self._iterators, state['shards']):
            it.set_state(s)


def open_eval_sources(data_cfg: ml_collections.ConfigDict, split: str = 'test',
                      limit: int | None = None) -> list[tuple[Any, Any, int]]:
    """(spec, random-access source, examples to use) for every dataset of data_cfg.eval_datasets.

    `limit` (default data_cfg.eval_limit; 0/None = all) caps source examples per dataset. Raises KeyError (unknown
    dataset or split) or FileNotFoundError (not prepared; the message names the prepare command).
    """
    limit = limit if limit is not None else (data_cfg.eval_limit or None)
    opened = []
    for spec in sources.parse_specs(data_cfg.eval_datasets):
        source = sources.open_source(spec, split, data_cfg)
        opened.append((spec, source, len(source) if not limit else min(limit, len(source))))
    return opened


def iter_eval_examples(data_cfg: ml_collections.ConfigDict, opened: Sequence[tuple[Any, Any, int]], *,
                       seed: int = 0) -> Iterator[dict]:
    """Deterministic eval examples, one at a time (a full-resolution test split in every kind may not fit in
    memory as a list).

    Each dict: 'input', 'target' [H, W, 3] float32 in [0, 1] (full image, or data_cfg.eval_crop centre crop),
    'kind' (one of KINDS), 'dataset' (label), 'name' (record name). Each source example appears once per kind in
    data_cfg.eval_kinds, degraded with a generator seeded by (seed, dataset index, example index, kind index).
    Corrupt examples follow data_cfg.on_corrupt.
    """
    kinds = [k.strip() for k in data_cfg.eval_kinds.split(',') if k.strip()]
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f'unknown eval kind {k!r}; expected some of {KINDS}')
    for d, (spec, source, n) in enumerate(opened):
        skipped = 0
        for i in range(n):
            record = source[i]
            pair = transforms.decode_or_skip(record, data_cfg.on_corrupt, f'{spec.label} {_record_name(record)}',
                                             as_float=False)
            if pair is None:
                skipped += 1
                continue
            inp, tgt = (transforms.to_float(transforms.center_crop(a, data_cfg.eval_crop)) for a in pair)
            for kind in kinds:
                rng = np.random.default_rng([seed, d, i, KINDS.index(kind)])
                x = transforms.degrade(inp, tgt, kind, sources.pair_kind(spec), rng, data_cfg)
                yield {'input': np.asarray(x, np.float32), 'target': tgt, 'kind': kind, 'dataset': spec.label,
                       'name': _record_name(record)}
        logging.info('%s: %d eval examples x %d kinds (%d corrupt skipped)', spec.label, n - skipped, len(kinds),
                     skipped)


def make_eval_examples(data_cfg: ml_collections.ConfigDict, *, split: str = 'test', seed: int = 0,
                       limit: int | None = None) -> list[dict]:
    """All eval examples of data_cfg.eval_datasets as a list (see iter_eval_examples)."""
    return list(iter_eval_examples(data_cfg, open_eval_sources(data_cfg, split, limit), seed=seed))
