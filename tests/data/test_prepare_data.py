"""The prepare_data CLI: counts per split on a miniature tree; a wrong folder exits 2 with the layout."""
import subprocess
import sys

from restorenet_jax.data import prepare
from tests.data.conftest import ROOT, bsd_tree


def test_prints_counts(tmp_path, capsys):
    bsd_tree(tmp_path / 'BSD_B', range(1, 5))
    status = prepare.main(['BSD-B', '--manual-dir', str(tmp_path), '--data-dir', str(tmp_path / 'tfds')])
    assert status == 0
    assert 'train: 4 examples' in capsys.readouterr().out


def test_wrong_folder_exits_2_with_layout(tmp_path):
    (tmp_path / 'GoPro_Large' / 'train').mkdir(parents=True)
    proc = subprocess.run([sys.executable, '-m', 'restorenet_jax.prepare_data', 'gopro_large/blur_gamma',
                           '--manual-dir', str(tmp_path), '--data-dir', str(tmp_path / 'tfds')],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'Expected layout' in proc.stderr and 'blur_gamma/000047.png' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_unknown_name_exits_2(tmp_path, capsys):
    assert prepare.main(['nope', '--manual-dir', str(tmp_path)]) == 2
    assert 'unknown dataset' in capsys.readouterr().err
