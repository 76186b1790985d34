"""make_train_iterator / make_eval_examples: determinism, resume, shards, filter, augmentation, corrupt images."""
import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from restorenet_jax.data import pipeline, transforms
from tests.data.conftest import bsd_tree, prepare

BRIGHT = {1, 2, 4, 5, 6, 8, 9, 10, 12}


def _ids(batch) -> set[int]:
    # Channel 0 of the target holds the example id on every pixel (crops/flips cannot change it).
    ids = np.round(batch['target'][..., 0] * 255).astype(int)
    assert (ids == ids[:, :1, :1]).all()
    return set(ids[:, 0, 0].tolist())


def _take(it, n):
    return [next(it) for _ in range(n)]


def _assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x['input'], y['input'])
        np.testing.assert_array_equal(x['target'], y['target'])


def test_batches_shape_dtype_range(bsd_cfg):
    batch = next(pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4))
    for key in ('input', 'target'):
        assert batch[key].shape == (4, 16, 16, 3) and batch[key].dtype == np.float32
        assert batch[key].min() >= 0 and batch[key].max() <= 1


def test_same_seed_same_batches_other_seed_differs(bsd_cfg):
    a = _take(pipeline.make_train_iterator(bsd_cfg, seed=5, global_batch_size=3), 6)
    b = _take(pipeline.make_train_iterator(bsd_cfg, seed=5, global_batch_size=3), 6)
    c = _take(pipeline.make_train_iterator(bsd_cfg, seed=6, global_batch_size=3), 6)
    _assert_batches_equal(a, b)
    assert any(not np.array_equal(x['input'], y['input']) for x, y in zip(a, c))


def test_get_state_set_state_resumes_exactly(bsd_cfg):
    reference = _take(pipeline.make_train_iterator(bsd_cfg, seed=1, global_batch_size=2), 9)
    it = pipeline.make_train_iterator(bsd_cfg, seed=1, global_batch_size=2)
    _take(it, 4)
    state = it.get_state()
    fresh = pipeline.make_train_iterator(bsd_cfg, seed=1, global_batch_size=2)
    fresh.set_state(state)
    _assert_batches_equal(_take(fresh, 5), reference[4:])


def test_orbax_checkpoint_resumes_exactly(bsd_cfg, tmp_path):
    reference = _take(pipeline.make_train_iterator(bsd_cfg, seed=2, global_batch_size=2), 8)
    it = pipeline.make_train_iterator(bsd_cfg, seed=2, global_batch_size=2)
    _take(it, 3)
    with ocp.CheckpointManager(tmp_path / 'ckpt') as mngr:
        mngr.save(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
        mngr.wait_until_finished()
    fresh = pipeline.make_train_iterator(bsd_cfg, seed=2, global_batch_size=2)
    with ocp.CheckpointManager(tmp_path / 'ckpt') as mngr:
        mngr.restore(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
    _assert_batches_equal(_take(fresh, 5), reference[3:])


def test_brightness_filter_excludes_exactly_the_dark_images(bsd_cfg):
    stats = pipeline.DataStats()
    it = pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=3, stats=stats)
    seen = set().union(*(_ids(b) for b in _take(it, 12)))  # 36 examples = 4 epochs of the 9 bright ones
    assert seen == BRIGHT
    assert stats.dark >= 3  # each epoch read drops the 3 dark ones
    bsd_cfg.brightness_threshold = -1.0  # disabled: dark images come back
    it = pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=3)
    assert set().union(*(_ids(b) for b in _take(it, 12))) == set(range(1, 13))


def test_process_shards_are_disjoint_and_cover(bsd_cfg):
    bsd_cfg.brightness_threshold = -1.0
    shards = []
    for p in range(2):
        it = pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4, process_index=p, process_count=2)
        batches = _take(it, 6)
        assert batches[0]['input'].shape[0] == 2  # per-process batch = global // process_count
        shards.append(set().union(*(_ids(b) for b in batches)))
    assert shards[0].isdisjoint(shards[1])
    assert shards[0] | shards[1] == set(range(1, 13))


def test_identical_geometry_on_input_and_target(bsd_cfg):
    bsd_cfg.ratio = '0:1:0:0'  # input = the blurred image, which equals the target in channels 0 and 1
    for batch in _take(pipeline.make_train_iterator(bsd_cfg, seed=3, global_batch_size=4), 5):
        np.testing.assert_array_equal(batch['input'][..., :2], batch['target'][..., :2])
        np.testing.assert_allclose(batch['target'][..., 2] - batch['input'][..., 2], 1 / 255, atol=1e-6)


def test_gt_and_blur_noise_kinds(bsd_cfg):
    bsd_cfg.ratio = '0:0:0:1'
    batch = next(pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4))
    np.testing.assert_array_equal(batch['input'], batch['target'])
    bsd_cfg.ratio = '1:0:0:0'
    stats = pipeline.DataStats()
    batch = next(pipeline.make_train_iterator(bsd_cfg, seed=0, global_batch_size=4, stats=stats))
    assert np.abs(batch['input'] - batch['target']).mean() > 1e-3  # noise was added
    assert stats.kinds['blur_noise'] == sum(stats.kinds.values()) >= 4


def test_ratio_mixing_matches_proportions():
    probs = transforms.parse_ratio('13:2:2:1')
    rng = np.random.default_rng(0)
    n = 20000
    draws = [transforms.draw_kind(rng, probs) for _ in range(n)]
    for kind, p in zip(transforms.KINDS, probs):
        count = draws.count(kind)
        sigma = np.sqrt(n * p * (1 - p))
        assert abs(count - n * p) < 4 * sigma, (kind, count, n * p)
    assert set(transforms.draw_kind(rng, transforms.parse_ratio('0:1:0:0')) for _ in range(200)) == {'blur'}
    with pytest.raises(ValueError):
        transforms.parse_ratio('1:2:3')
    with pytest.raises(ValueError):
        transforms.parse_ratio('0:0:0:0')


def test_paired_crop_flip_rot_are_identical():
    rng = np.random.default_rng(0)
    tgt = rng.random((20, 30, 3)).astype(np.float32)
    inp = tgt + 1.0  # a known offset: any geometric mismatch breaks inp - tgt == 1
    for _ in range(20):
        a, b = transforms.random_crop_pair(inp, tgt, 8, rng)
        a, b = transforms.random_flip_rot(a, b, rng, True, True)
        assert a.shape == (8, 8, 3)
        np.testing.assert_allclose(a - b, 1.0, atol=1e-6)
    small = transforms.random_crop_pair(inp[:5, :6], tgt[:5, :6], 8, rng, 'pad')
    assert small[0].shape == (8, 8, 3)
    assert transforms.random_crop_pair(inp[:5, :6], tgt[:5, :6], 8, rng, 'skip') is None


def test_corrupt_png_is_skipped_and_counted(tmp_path, data_cfg):
    bsd_tree(tmp_path / 'BSD_B', range(1, 7), corrupt_ids=(4,))
    prepare('bsd_b', tmp_path / 'BSD_B', data_cfg.data_dir)
    data_cfg.datasets, data_cfg.noise.kind = 'bsd_b', 'gaussian'
    stats = pipeline.DataStats()
    it = pipeline.make_train_iterator(data_cfg, seed=0, global_batch_size=2, stats=stats)
    ids = set().union(*(_ids(b) for b in _take(it, 10)))  # 20 examples: several epochs
    assert ids == {1, 2, 3, 5, 6}
    assert stats.corrupt >= 1
    data_cfg.on_corrupt = 'raise'
    with pytest.raises(Exception, match='corrupt|truncated|image'):
        _take(pipeline.make_train_iterator(data_cfg, seed=0, global_batch_size=2), 10)


def test_eval_examples_deterministic_with_all_kinds(bsd_cfg):
    bsd_cfg.eval_datasets = 'bsd_b'
    a = pipeline.make_eval_examples(bsd_cfg, split='train', seed=0, limit=3)
    b = pipeline.make_eval_examples(bsd_cfg, split='train', seed=0, limit=3)
    assert len(a) == 3 * 4 and [e['kind'] for e in a[:4]] == list(transforms.KINDS)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x['input'], y['input'])
        assert x['dataset'] == 'bsd_b' and x['input'].shape == (24, 32, 3)
    gt = [e for e in a if e['kind'] == 'gt']
    assert all(np.array_equal(e['input'], e['target']) for e in gt)
    bsd_cfg.eval_crop = 16
    assert pipeline.make_eval_examples(bsd_cfg, split='train', limit=1)[0]['target'].shape == (16, 16, 3)


def test_worker_processes_are_deterministic_and_resume(bsd_cfg):
    """With grain worker processes (num_workers > 0, outside an absl app) a restored iterator state continues
    exactly where the saved one stood, in a fresh iterator with fresh workers."""
    bsd_cfg.num_workers = 2
    it = pipeline.make_train_iterator(bsd_cfg, seed=4, global_batch_size=2)
    first = _take(it, 3)
    state = it.get_state()
    rest = _take(it, 4)
    for batch in first + rest:
        assert batch['input'].shape == (2, 16, 16, 3) and _ids(batch) <= BRIGHT
    fresh = pipeline.make_train_iterator(bsd_cfg, seed=4, global_batch_size=2)
    fresh.set_state(state)
    _assert_batches_equal(_take(fresh, 4), rest)


def test_read_ahead_holds_about_the_configured_crops():
    # grain's default read-ahead (500 records) would hold 500 x crops_per_read crop pairs; the buffer is sized in
    # crops instead, with at least one record per reading thread.
    from restorenet_jax.configs.data import get_data_config

    cfg = get_data_config()
    cfg.read_threads, cfg.read_ahead_crops = 4, 128
    for crops, records in ((1, 128), (16, 8), (32, 4), (64, 4)):
        cfg.crops_per_read = crops
        options = pipeline.read_options(cfg)
        assert (options.num_threads, options.prefetch_buffer_size) == (4, records), crops
    cfg.read_threads = 0
    with pytest.raises(ValueError, match="read_threads"):
        pipeline.read_options(cfg)
