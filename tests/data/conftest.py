"""Helpers and fixtures for the data tests: tiny PNGs with ids encoded in pixels, a tiny data config."""
import io
import os

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format='PNG')
    return buf.getvalue()


def id_image(ident: int, h: int = 24, w: int = 32, value: int | None = None) -> np.ndarray:
    """uint8 [h, w, 3]: channel 0 encodes the id, channel 1 a gradient (so crops/flips are visible), channel 2 the
    brightness (value) if given."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = ident
    img[..., 1] = (np.arange(h)[:, None] * 7 + np.arange(w)[None, :] * 3) % 256
    img[..., 2] = 200 if value is None else value
    return img


def write_png(path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(image))


@pytest.fixture
def data_cfg(tmp_path):
    """Tiny data config: embedded set of 16-24 px pairs, crop 16, data dir in tmp."""
    from restorenet_jax.configs.data import get_data_config

    cfg = get_data_config()
    cfg.data_dir = str(tmp_path / 'tfds')
    cfg.crop_size = 16
    emb = cfg.embedded
    emb.train_images, emb.test_images = 'astronaut,rocket', 'chelsea'
    emb.train_pairs_per_image, emb.test_pairs_per_image = 6, 3
    emb.min_size, emb.max_size, emb.margin = 20, 28, 8
    emb.min_scale, emb.max_scale = 0.05, 0.1
    cfg.blur.motion.size_range = (3, 7)  # small kernels: tiny images, fast tests
    cfg.degrade_on = 'host'  # float batches degraded in numpy (test_device_path.py covers the device path)
    return cfg


def bsd_tree(root, ids, dark_ids=(), corrupt_ids=(), h=24, w=32):
    """A BSD-B tree in the real layout. Channel 0 = id (both images); channel 1 = gradient (both); channel 2 =
    brightness: 200 (bright) or 30 (dark, V = 30/255 <= 0.2), minus 1 in the blurred image so input != target."""
    lines = []
    for i in ids:
        value = 30 if i in dark_ids else 200
        gt = id_image(i, h, w, value)
        gt[..., 1] = np.minimum(gt[..., 1], value)  # keep V (max over RGB) equal to `value`
        blur = gt.copy()
        blur[..., 2] -= 1
        gt_rel = f'BSD_B_Centroid/gt/{i:05d}_kernel_21_gt.png'
        blur_rel = f'BSD_B_Centroid/blur/{i:05d}_kernel_21_blurred.png'
        write_png(root / gt_rel, gt)
        write_png(root / blur_rel, blur)
        if i in corrupt_ids:
            data = (root / blur_rel).read_bytes()
            (root / blur_rel).write_bytes(data[: len(data) // 2])  # truncated PNG
        lines.append(f'{gt_rel} {blur_rel}')
    (root / 'BSB_B_Centroid_train.txt').write_text('\n'.join(lines) + '\n')
    return root


def prepare(name, manual_dir, data_dir, config=None):
    """Prepare a builder from a manual dir (what the prepare_data CLI does) and return it."""
    import tensorflow_datasets as tfds

    from restorenet_jax.data.builders import BUILDERS

    builder = BUILDERS[name](data_dir=str(data_dir), file_format='array_record', config=config)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


@pytest.fixture
def bsd_cfg(tmp_path, data_cfg):
    """Data config training on a prepared 12-pair BSD-B tree (ids 1..12; 3, 7 and 11 dark)."""
    bsd_tree(tmp_path / 'BSD_B', range(1, 13), dark_ids=(3, 7, 11))
    prepare('bsd_b', tmp_path / 'BSD_B', data_cfg.data_dir)
    data_cfg.datasets = 'bsd_b'
    data_cfg.noise.kind = 'gaussian'  # fast noise for tests
    return data_cfg
