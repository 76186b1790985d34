"""Own data: `folder` (clean images) and `paired_folder` (input/target folders) from miniature trees; their
layout errors exit 2 naming the problem; both build, mix, evaluate and train a few steps."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from restorenet_jax.data import pipeline, prepare, transforms
from restorenet_jax.data.builders import BUILDERS, LayoutError
from tests.data.conftest import ROOT, id_image, write_png


def _jpeg(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=100, subsampling=0)


def _records(data_dir, name, config, split):
    builder = BUILDERS[name](data_dir=str(data_dir), file_format='array_record', config=config)
    skip = tfds.decode.SkipDecoding()
    src = builder.as_data_source(split, decoders={'input': skip, 'target': skip})
    return [src[i] for i in range(len(src))]


def _prepare(capsys, name, manual_dir, data_dir):
    """(exit status, the CLI's 'split: N examples' lines, stderr)."""
    status = prepare.main([name, '--manual-dir', str(manual_dir), '--data-dir', str(data_dir)])
    out = capsys.readouterr()
    counts = '\n'.join(line for line in out.out.splitlines() if line.endswith(' examples'))
    return status, counts, out.err


def clean_tree(root, ids, split_dirs=True, h=20, w=28):
    """Clean images, id in channel 0; PNG and JPEG, nested; train/ and test/ when split_dirs."""
    for i in ids:
        sub = ('train' if i % 4 else 'test') if split_dirs else ''
        path = root / sub / f'cam{i % 2}' / f'{i:03d}'
        if i % 3:
            write_png(path.with_suffix('.png'), id_image(i, h, w))
        else:
            _jpeg(path.with_suffix('.jpg'), id_image(i, h, w))
    return root


def paired_tree(root, ids, names=('lq', 'gt'), split='', h=20, w=28):
    """Pairs matched by name (input: channel 2 changed), PNG, nested; channel 0 = 2 * id (room for JPEG error)."""
    for i in ids:
        tgt = id_image(2 * i, h, w)
        inp = tgt.copy()
        inp[..., 2] = 90
        write_png(root / split / names[1] / f'seq{i % 2}' / f'{i:04d}.png', tgt)
        write_png(root / split / names[0] / f'seq{i % 2}' / f'{i:04d}.png', inp)
    return root


def test_folder_splits_records_and_named_instances(tmp_path, capsys):
    tree = clean_tree(tmp_path / 'frames', range(1, 9))
    (tmp_path / 'frames' / 'train' / '.DS_Store').write_bytes(b'junk')  # hidden files are skipped
    status, out, _ = _prepare(capsys, 'folder/cam', tree, tmp_path / 'tfds')
    assert status == 0 and 'train: 6 examples' in out and 'test: 2 examples' in out
    records = _records(tmp_path / 'tfds', 'folder', 'cam', 'test')
    assert sorted(r['name'].decode() for r in records) == ['test/cam0/004.png', 'test/cam0/008.png']
    for r in _records(tmp_path / 'tfds', 'folder', 'cam', 'train'):
        assert r['input'] == b''  # clean record: the input is synthesised from the target
        inp, tgt = transforms.decode_pair(r)
        assert inp is tgt and tgt.shape == (20, 28, 3)
    # A second instance under another name sits beside the first; a tree without split folders is all 'train'.
    status, out, _ = _prepare(capsys, 'folder/other', clean_tree(tmp_path / 'flat', range(1, 4), False),
                              tmp_path / 'tfds')
    assert status == 0 and out == 'train: 3 examples'
    assert len(_records(tmp_path / 'tfds', 'folder', 'cam', 'train')) == 6


def test_folder_rebuilds_when_the_folder_changes(tmp_path, capsys):
    tree = clean_tree(tmp_path / 'frames', range(1, 4), False)
    assert _prepare(capsys, 'folder', tree, tmp_path / 'tfds')[1] == 'train: 3 examples'
    assert _prepare(capsys, 'folder', tree, tmp_path / 'tfds')[1] == 'train: 3 examples'  # reused
    clean_tree(tree, [4], False)
    assert _prepare(capsys, 'folder', tree, tmp_path / 'tfds')[1] == 'train: 4 examples'  # rebuilt
    assert len(_records(tmp_path / 'tfds', 'folder', None, 'train')) == 4


def test_paired_folder_matches_names_across_extensions(tmp_path, capsys):
    tree = paired_tree(tmp_path / 'pairs', range(1, 5), split='train')
    paired_tree(tree, range(5, 7), names=('LQ', 'GT'), split='val')  # case-insensitive folder names
    for p in (tree / 'train' / 'lq').rglob('*.png'):  # inputs as JPEG: matched by name without extension
        _jpeg(p.with_suffix('.jpg'), np.asarray(Image.open(p)))
        p.unlink()
    status, out, _ = _prepare(capsys, 'paired_folder', tree, tmp_path / 'tfds')
    assert status == 0 and 'train: 4 examples' in out and 'validation: 2 examples' in out
    for split, ids in (('train', [1, 2, 3, 4]), ('validation', [5, 6])):
        found = []
        for r in _records(tmp_path / 'tfds', 'paired_folder', None, split):
            inp, tgt = transforms.decode_pair(r)
            assert abs(inp[..., 0].mean() - tgt[..., 0].mean()) < 0.9 / 255  # the same picture (JPEG input)
            assert np.abs(inp[..., 2] - 90 / 255).max() < 0.05 and tgt[0, 0, 2] == 200 / 255  # input vs target
            found.append(round(tgt[0, 0, 0] * 255) // 2)
        assert sorted(found) == ids
    assert BUILDERS['paired_folder'].PAIR_KIND == 'blur' and BUILDERS['paired_noise_folder'].PAIR_KIND == 'noise'


def _break(kind, root):
    """Build a miniature tree with one problem; return (builder name, manual dir, words the message must hold)."""
    if kind == 'missing':
        return 'folder', root / 'nope', ['does not exist', 'Expected layout']
    if kind == 'empty':
        (root / 'train').mkdir(parents=True)
        return 'folder', root, [f'{root / "train"} holds no images', 'Expected layout']
    if kind == 'stray':
        clean_tree(root, range(1, 5))
        write_png(root / 'loose' / 'x.png', id_image(9))
        return 'folder', root, ['outside the split folders', 'loose/x.png']
    if kind == 'unreadable':
        clean_tree(root, range(1, 4), False)
        (root / 'cam1' / 'bad.png').write_bytes(b'not an image')
        data = (root / 'cam1' / '001.png').read_bytes()
        (root / 'cam1' / '001.png').write_bytes(data[: len(data) // 2])  # truncated
        return 'folder', root, ['2 unreadable image(s)', 'cam1/bad.png', 'cam1/001.png']
    if kind == 'sixteen_bit':
        root.mkdir()
        Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(root / 'deep.png')
        return 'folder', root, ['deep.png', '8-bit']
    if kind == 'no_pair_folders':
        paired_tree(root, range(1, 3))
        (root / 'gt').rename(root / 'truth')
        return 'paired_folder', root, ['no input/target folder pair (found only lq/)', 'Expected layout']
    if kind == 'unmatched':
        paired_tree(root, range(1, 5))
        (root / 'gt' / 'seq1' / '0003.png').unlink()
        (root / 'lq' / 'seq0' / '0002.png').rename(root / 'lq' / 'seq0' / '0020.png')
        return 'paired_folder', root, ['unmatched names', 'seq1/0003.png', 'seq0/0020.png', 'seq0/0002.png']
    if kind == 'sizes':
        paired_tree(root, range(1, 3))
        write_png(root / 'lq' / 'seq1' / '0001.png', id_image(1, 20, 30))
        return 'paired_noise_folder', root, ['different sizes', 'seq1/0001.png 28x20 vs input 30x20']
    raise ValueError(kind)


@pytest.mark.parametrize('kind', ['missing', 'empty', 'stray', 'unreadable', 'sixteen_bit', 'no_pair_folders',
                                  'unmatched', 'sizes'])
def test_bad_trees_exit_2_naming_the_problem(tmp_path, capsys, kind):
    name, manual_dir, words = _break(kind, tmp_path / 'tree')
    status, _, err = _prepare(capsys, name, manual_dir, tmp_path / 'tfds')
    assert status == 2
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / 'tfds' / name).exists() or not list((tmp_path / 'tfds' / name).rglob('*.array_record*'))
    with pytest.raises(LayoutError):
        BUILDERS[name](data_dir=str(tmp_path / 'tfds')).check_manual_dir(manual_dir)


def test_cli_unmatched_names_exit_2_without_traceback(tmp_path):
    name, manual_dir, words = _break('unmatched', tmp_path / 'tree')
    proc = subprocess.run([sys.executable, '-m', 'restorenet_jax.prepare_data', name, '--manual-dir',
                           str(manual_dir), '--data-dir', str(tmp_path / 'tfds')],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert all(w in proc.stderr for w in words)


@pytest.fixture
def own_cfg(tmp_path, data_cfg, capsys):
    """Data config mixing a prepared clean folder and a prepared paired folder; both also the eval sets."""
    assert _prepare(capsys, 'folder/cams', clean_tree(tmp_path / 'frames', range(1, 13), h=24, w=32),
                    data_cfg.data_dir)[0] == 0
    pairs = paired_tree(tmp_path / 'pairs', range(20, 28), names=('input', 'target'), split='train', h=24, w=32)
    paired_tree(pairs, range(30, 32), names=('input', 'target'), split='test', h=24, w=32)
    assert _prepare(capsys, 'paired_folder', pairs, data_cfg.data_dir)[0] == 0
    data_cfg.datasets = 'folder/cams:1,paired_folder:1'
    data_cfg.eval_datasets = 'folder/cams,paired_folder'
    data_cfg.noise.kind = 'gaussian'  # fast noise for tests
    return data_cfg


def test_mix_and_eval_sets(own_cfg):
    stats = pipeline.DataStats()
    it = pipeline.make_train_iterator(own_cfg, seed=0, global_batch_size=4, stats=stats)
    ids = set()
    for _ in range(6):
        batch = next(it)
        assert batch['input'].shape == (4, 16, 16, 3) and batch['input'].dtype == np.float32
        ids.update(np.round(batch['target'][:, 0, 0, 0] * 255).astype(int).tolist())
    assert ids & set(range(1, 13)) and ids & set(range(40, 56, 2))  # both datasets of the mix are drawn
    examples = pipeline.make_eval_examples(own_cfg)
    by = {(e['dataset'], e['kind']): e for e in examples if e['name'].endswith(('004.png', '0030.png'))}
    assert {d for d, _ in by} == {'folder/cams', 'paired_folder'}
    clean = {k: by[('folder/cams', k)] for k in transforms.KINDS}
    np.testing.assert_array_equal(clean['gt']['input'], clean['gt']['target'])
    for k in ('blur_noise', 'blur', 'noise'):  # all synthesised from the clean image
        assert np.abs(clean[k]['input'] - clean[k]['target']).mean() > 1e-3, k
    paired = by[('paired_folder', 'blur')]
    np.testing.assert_allclose(paired['input'][..., 2], 90 / 255)  # the real input of the pair


def test_trains_a_few_steps_on_own_folders(tmp_path, own_cfg):
    from restorenet_jax.training import loop
    from tests.training.tiny import tiny_config

    config = tiny_config(**{'num_train_steps': 2, 'log_every_steps': 1, 'checkpoint_every_steps': 2,
                            'data.eval_crop': 16})
    for key in ('datasets', 'eval_datasets', 'data_dir', 'noise'):
        config.data[key] = own_cfg[key]
    report = loop.train_and_evaluate(config, tmp_path / 'run')
    rows = [json.loads(line) for line in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
    losses = [m['loss'] for m in rows if m['split'] == 'train']
    assert len(losses) == 2 and np.all(np.isfinite(losses))
    assert np.isfinite(report['overall']['output_psnr'])
    assert set(report['groups']) == {'folder/cams/blur_noise', 'paired_folder/blur_noise'}  # both eval sets
