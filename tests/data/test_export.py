"""export_degraded: a fixed, reproducible degraded copy with a manifest of kinds."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.data.export import export
from tests.data.conftest import ROOT


def _load(path):
    return np.asarray(Image.open(path))


def test_export_is_reproducible_and_filtered(bsd_cfg, tmp_path):
    bsd_cfg.ratio = '1:1:1:1'
    a = export(bsd_cfg, tmp_path / 'a', seed=3)
    b = export(bsd_cfg, tmp_path / 'b', seed=3)
    assert a['entries'] == b['entries']
    assert len(a['entries']) == 9 and a['skipped'] == {'dark': 3, 'corrupt': 0}  # 3 of 12 fixture images are dark
    assert json.loads((tmp_path / 'a' / 'manifest.json').read_text())['entries'] == a['entries']
    for e in a['entries']:
        x, y = _load(tmp_path / 'a' / e['input']), _load(tmp_path / 'b' / e['input'])
        np.testing.assert_array_equal(x, y)
        tgt = _load(tmp_path / 'a' / e['target'])
        if e['kind'] == 'gt':
            np.testing.assert_array_equal(x, tgt)
        elif e['kind'] == 'blur':  # the fixture's blurred image differs only by 1 in channel 2
            np.testing.assert_array_equal(tgt[..., 2].astype(int) - x[..., 2], 1)
    assert len({e['kind'] for e in a['entries']}) > 1
    with pytest.raises(FileExistsError):
        export(bsd_cfg, tmp_path / 'a')


def test_cli_writes_manifest(bsd_cfg, tmp_path):
    out = tmp_path / 'cli'
    proc = subprocess.run([sys.executable, '-m', 'restorenet_jax.export_degraded', '--config', 'configs/data.py',
                           f'--config.data_dir={bsd_cfg.data_dir}', '--config.datasets=bsd_b',
                           '--config.noise.kind=gaussian', '--limit=4', f'--out={out}'],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / 'manifest.json').read_text())
    # Record order is TFDS' (hashed keys), so which of the 4 read are dark varies: written + dark == 4.
    assert len(manifest['entries']) + manifest['skipped']['dark'] == 4 and manifest['entries']
    assert 'pairs written' in proc.stdout
