"""Each builder on a miniature tree in the real layout: pair counts, matched input/target, layout errors."""
import numpy as np
import pytest
import scipy.io

from restorenet_jax.data import transforms
from restorenet_jax.data.builders import BUILDERS, LayoutError
from tests.data.conftest import bsd_tree, id_image, prepare, write_png


def _check_pairs(builder, split, expected):
    """Every record's input and target carry the same id (channel 0); returns the sorted ids."""
    skip = __import__('tensorflow_datasets').decode.SkipDecoding()
    src = builder.as_data_source(split, decoders={'input': skip, 'target': skip})
    assert len(src) == expected
    ids = []
    for i in range(len(src)):
        inp, tgt = transforms.decode_pair(src[i])
        assert inp[0, 0, 0] == tgt[0, 0, 0]
        assert not np.array_equal(inp, tgt)  # input is the degraded image, not a copy of the target
        ids.append(int(round(tgt[0, 0, 0] * 255)))
    assert len(set(ids)) == expected
    return sorted(ids)


def _pair(root, inp_rel, tgt_rel, ident):
    tgt = id_image(ident, 12, 16)
    inp = tgt.copy()
    inp[..., 2] = 100  # degraded version differs in channel 2 only
    write_png(root / inp_rel, inp)
    write_png(root / tgt_rel, tgt)


def test_gopro_large(tmp_path):
    root, ident = tmp_path / 'GoPro_Large', 1
    for split, seqs in (('train', 2), ('test', 1)):
        for s in range(seqs):
            for f in range(2):
                seq = root / split / f'GOPR0{s}_11_00'
                _pair(seq, f'blur_gamma/{f:06d}.png', f'sharp/{f:06d}.png', ident)
                _pair(seq, f'blur/{f:06d}.png', f'sharp/{f:06d}.png', ident)  # same sharp: overwrites identically
                ident += 1
    builder = prepare('gopro_large', tmp_path, tmp_path / 'tfds', config='blur_gamma')  # parent dir accepted
    assert _check_pairs(builder, 'train', 4) == [1, 2, 3, 4]
    assert _check_pairs(builder, 'test', 2) == [5, 6]
    (root / 'test').rename(tmp_path / 'elsewhere')
    with pytest.raises(LayoutError, match='sharp'):
        BUILDERS['gopro_large'](data_dir=str(tmp_path / 'x'), config='blur').check_manual_dir(root)


@pytest.mark.parametrize('variant', ['J', 'R'])
def test_realblur(tmp_path, variant):
    root = tmp_path / 'RealBlur'
    base = f'RealBlur-{variant}_ECC_IMCORR_centroid_itensity_ref'
    ident = 1
    for split, n in (('train', 3), ('test', 2)):
        lines = []
        for _ in range(n):
            gt, blur = f'{base}/scene{ident:03d}/gt/gt_7.png', f'{base}/scene{ident:03d}/blur/blur_7.png'
            _pair(root, blur, gt, ident)
            lines.append(f'{gt} {blur}')
            ident += 1
        (root / f'RealBlur_{variant}_{split}_list.txt').write_text('\n'.join(lines))
    builder = prepare(f'realblur_{variant.lower()}', root, tmp_path / 'tfds')
    assert _check_pairs(builder, 'train', 3) == [1, 2, 3]
    assert _check_pairs(builder, 'test', 2) == [4, 5]


def test_realblur_tele(tmp_path):
    root = tmp_path / 'RealBlur-Tele'
    for variant, first in (('J', 1), ('R', 10)):
        base, lines = f'RealBlur-{variant}-Tele_ECC_IMCORR_centroid_itensity_ref', []
        for ident in range(first, first + 3):
            gt, blur = f'{base}/scene{ident:03d}/gt/gt_1.png', f'{base}/scene{ident:03d}/blur/blur_1.png'
            _pair(root, blur, gt, ident)
            lines.append(f'{gt} {blur}')
        (root / f'RealBlur-{variant}-Tele_test_list.txt').write_text('\n'.join(lines))
    assert _check_pairs(prepare('realblur_tele', root, tmp_path / 'tfds', config='j'), 'test', 3) == [1, 2, 3]
    assert _check_pairs(prepare('realblur_tele', root, tmp_path / 'tfds', config='r'), 'test', 3) == [10, 11, 12]


def test_bsd_b(tmp_path):
    bsd_tree(tmp_path / 'BSD_B', range(1, 6))
    assert _check_pairs(prepare('bsd_b', tmp_path / 'BSD_B', tmp_path / 'tfds'), 'train', 5) == [1, 2, 3, 4, 5]


def test_sidd_pairs_and_validation_mat(tmp_path):
    root = tmp_path / 'SIDD'
    ident = 1
    for scene in ('0001_001_S6_00100_00060_3200_L', '0002_001_S6_00100_00020_3200_N'):
        for it in ('010', '011'):
            prefix = root / 'SIDD_Medium_Srgb' / 'Data' / scene / scene[:4]
            _pair(prefix.parent, f'{scene[:4]}_NOISY_SRGB_{it}.PNG', f'{scene[:4]}_GT_SRGB_{it}.PNG', ident)
            ident += 1
    gt = np.stack([np.stack([id_image(100 + 3 * i + j, 8, 8) for j in range(3)]) for i in range(2)])
    noisy = gt.copy()
    noisy[..., 2] = 7
    scipy.io.savemat(root / 'ValidationNoisyBlocksSrgb.mat', {'ValidationNoisyBlocksSrgb': noisy})  # v5
    scipy.io.savemat(root / 'ValidationGtBlocksSrgb.mat', {'ValidationGtBlocksSrgb': gt})
    builder = prepare('sidd', root, tmp_path / 'tfds')
    assert builder.PAIR_KIND == 'noise'
    assert _check_pairs(builder, 'train', 4) == [1, 2, 3, 4]
    assert _check_pairs(builder, 'validation', 6) == list(range(100, 106))


@pytest.mark.parametrize('name', ['gopro_large', 'realblur_j', 'realblur_r', 'realblur_tele', 'bsd_b', 'sidd'])
def test_missing_or_wrong_folder_shows_layout(tmp_path, name):
    builder = BUILDERS[name](data_dir=str(tmp_path / 'tfds'))
    with pytest.raises(LayoutError, match='Expected layout') as missing:
        builder.check_manual_dir(tmp_path / 'does_not_exist')
    assert builder.LAYOUT.splitlines()[1].strip() in str(missing.value)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(LayoutError, match='Expected layout'):
        builder.check_manual_dir(tmp_path / 'empty')
