"""The host stage of the device path (data.degrade_on='device'): uint8 crops, deterministic and resumable, the same
crops as the host path; several crops per read; the fast decoder equals PIL; the uint8 brightness filter."""
import io

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.data import device_degrade, pipeline, transforms


def _take(it, n):
    return [next(it) for _ in range(n)]


def _device(cfg, **fields):
    cfg.degrade_on = 'device'
    for k, v in fields.items():
        cfg[k] = v
    return cfg


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_uint8_batches_with_pair_kinds(bsd_cfg):
    batch = next(pipeline.make_train_iterator(_device(bsd_cfg), seed=0, global_batch_size=4))
    assert set(batch) == {'target', 'degraded', 'pair_kind'}
    for key in ('target', 'degraded'):
        assert batch[key].shape == (4, 16, 16, 3) and batch[key].dtype == np.uint8
    assert batch['pair_kind'].shape == (4,) and batch['pair_kind'].dtype == np.int32
    assert (batch['pair_kind'] == device_degrade.PAIR_KINDS.index('blur')).all()
    # The blurred crop is the same crop of the paired image (BSD tree: channel 2 is one lower, the rest equal).
    np.testing.assert_array_equal(batch['degraded'][..., :2], batch['target'][..., :2])
    np.testing.assert_array_equal(batch['target'][..., 2].astype(int) - batch['degraded'][..., 2], 1)


def test_same_crops_as_the_host_path(bsd_cfg):
    host = _take(pipeline.make_train_iterator(bsd_cfg, seed=4, global_batch_size=3), 4)
    device = _take(pipeline.make_train_iterator(_device(bsd_cfg), seed=4, global_batch_size=3), 4)
    for h, d in zip(host, device):
        np.testing.assert_array_equal(h['target'], d['target'] / np.float32(255.0))


def test_same_seed_same_batches_and_exact_resume(bsd_cfg):
    _device(bsd_cfg)
    reference = _take(pipeline.make_train_iterator(bsd_cfg, seed=1, global_batch_size=2), 9)
    _assert_same(_take(pipeline.make_train_iterator(bsd_cfg, seed=1, global_batch_size=2), 9), reference)
    other = _take(pipeline.make_train_iterator(bsd_cfg, seed=2, global_batch_size=2), 9)
    assert any(not np.array_equal(x['target'], y['target']) for x, y in zip(reference, other))
    it = pipeline.make_train_iterator(bsd_cfg, seed=1, global_batch_size=2)
    _take(it, 4)
    fresh = pipeline.make_train_iterator(bsd_cfg, seed=1, global_batch_size=2)
    fresh.set_state(it.get_state())
    _assert_same(_take(fresh, 5), reference[4:])


def test_several_crops_per_read_spread_and_resume(bsd_cfg):
    bsd_cfg.brightness_threshold = -1.0
    _device(bsd_cfg, crops_per_read=4, crop_shuffle_window=1)  # no shuffle: the 4 crops of a read in a row
    ids = np.concatenate([b['target'][:, 0, 0, 0] for b in _take(
        pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4), 6)])
    assert all(len(set(ids[i:i + 4])) == 1 for i in range(0, len(ids), 4)), ids
    bsd_cfg.crop_shuffle_window = 32
    it = pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4)
    batches = _take(it, 12)
    ids = np.concatenate([b['target'][:, 0, 0, 0] for b in batches])
    assert np.mean([len(set(b['target'][:, 0, 0, 0])) for b in batches]) > 2.5  # reads spread over batches
    assert set(ids) == set(range(1, 13))
    # Resume in the middle of a shuffle window (5 batches = 20 crops of a 32-crop window).
    it = pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4)
    _take(it, 5)
    fresh = pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4)
    fresh.set_state(it.get_state())
    _assert_same(_take(fresh, 7), batches[5:])
    bsd_cfg.crops_per_read = 0
    with pytest.raises(ValueError, match='crops_per_read'):
        pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4)


def test_shards_join_the_same_global_batches(bsd_cfg):
    """data.num_shards fixed: two processes' halves joined equal one process's batches (device path too)."""
    _device(bsd_cfg, num_shards=2)
    whole = _take(pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4), 3)
    halves = [_take(pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4, process_index=p,
                                                 process_count=2), 3) for p in range(2)]
    for w, a, b in zip(whole, *halves):
        for k in w:
            np.testing.assert_array_equal(w[k], np.concatenate([a[k], b[k]]))


def _png(image, mode=None):
    buf = io.BytesIO()
    im = Image.fromarray(image)
    (im.convert(mode) if mode else im).save(buf, format='PNG')
    return buf.getvalue()


@pytest.mark.parametrize('mode', [None, 'P', 'L', 'RGBA'])
def test_decode_image_equals_pil(mode):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    data = _png(image, mode)
    with Image.open(io.BytesIO(data)) as im:
        expected = np.asarray(im.convert('RGB'))
    decoded = transforms.decode_image(data)
    assert decoded.dtype == np.uint8 and decoded.shape == (9, 13, 3)
    np.testing.assert_array_equal(decoded, expected)
    with pytest.raises(transforms.CorruptImageError):
        transforms.decode_image(data[:len(data) // 2])


def test_brightness_filter_on_uint8_matches_float():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    as_float = image.astype(np.float32) / 255.0
    assert transforms.mean_value(image) == pytest.approx(float(as_float.max(-1).mean()), abs=1e-6)
    v = transforms.mean_value(image)
    assert transforms.is_dark(image, v + 1e-3) and not transforms.is_dark(image, v - 1e-3)
