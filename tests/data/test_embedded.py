"""The embedded default set: built offline on first use, deterministic, held-out photos, blurred pairs."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from restorenet_jax.data import pipeline, sources, transforms


def _records(cfg, split):
    src = sources.open_source(sources.parse_specs('embedded')[0], split, cfg)
    return sorted((src[i] for i in range(len(src))), key=lambda r: r['name'])


def test_embedded_builds_on_first_use_deterministically(data_cfg, tmp_path):
    batch = next(pipeline.make_train_iterator(data_cfg, seed=0, global_batch_size=2))  # builds it
    assert batch['input'].shape == (2, 16, 16, 3)
    train, test = _records(data_cfg, 'train'), _records(data_cfg, 'test')
    assert len(train) == 2 * 6 and len(test) == 1 * 3
    # Held out: the test split comes from other photos than training.
    photo = lambda r: r['name'].decode().split('/')[1].rsplit('_', 1)[0]  # noqa: E731
    assert {photo(r) for r in train} == {'astronaut', 'rocket'} and {photo(r) for r in test} == {'chelsea'}
    for r in train:
        inp, tgt = transforms.decode_pair(r)
        assert 20 <= tgt.shape[0] == tgt.shape[1] <= 28
        assert np.abs(inp - tgt).mean() > 1e-3  # blurred
        assert abs(inp.mean() - tgt.mean()) < 0.05  # blur keeps the mean brightness
    # Same parameters in another data dir give byte-identical records.
    data_cfg.data_dir = str(tmp_path / 'other')
    again = _records(data_cfg, 'train')
    assert [(r['input'], r['target']) for r in again] == [(r['input'], r['target']) for r in train]


def test_embedded_config_change_builds_a_new_variant(data_cfg):
    a = sources.load_builder(sources.parse_specs('embedded')[0], data_cfg, prepare_embedded=False)
    data_cfg.embedded.seed = 1
    b = sources.load_builder(sources.parse_specs('embedded')[0], data_cfg, prepare_embedded=False)
    assert a.builder_config.name != b.builder_config.name


_BUILD_IN_CHILD = """
import json, sys
import ml_collections
from restorenet_jax.data import sources
cfg = ml_collections.ConfigDict(json.loads(sys.argv[1]))
builder = sources.load_builder(sources.parse_specs('embedded')[0], cfg)
print(builder.info.splits['train'].num_examples)
"""


def test_processes_starting_together_build_it_once(data_cfg):
    """Several processes on one host (a multi-process run, parallel test workers) may all find the set missing: a
    file lock lets one build it while the others wait and then read the same build."""
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, '-c', _BUILD_IN_CHILD, data_cfg.to_json()]
    procs = [subprocess.Popen(cmd, cwd=root, env=dict(os.environ, PYTHONPATH=str(root)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    assert [out.split()[-1] for out, _ in outs] == ['12'] * 3
    config_dir = next((Path(data_cfg.data_dir) / 'embedded').iterdir())
    assert sorted(p.name for p in config_dir.iterdir()) == ['1.0.0']  # no second build, no leftover temp dir
