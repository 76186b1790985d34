"""The 'mixed' noise kind: the device twin equal to the numpy reference on the same draws (every branch: linear or
sRGB domain, mosaic, each ISP op, compression, second round), equal in distribution on independent draws
(statistics of the noise), and each ingredient doing what it claims (correlation, luma share, banding, blocks)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from restorenet_jax.configs.data import get_data_config
from restorenet_jax.configs.degradations import get_noise_config
from restorenet_jax.data import degradations, device_degrade as dd, mixed
from restorenet_jax.data.camera_pipeline import CameraParams
from restorenet_jax.training.config_check import check_config
from tests.data.test_cctv import _boundary_over_inner_jump, _low_over_high_power, _photo


def _cfg(**mixed_fields):
    cfg = get_data_config()
    assert cfg.noise.kind == 'mixed'  # the default
    for k, v in mixed_fields.items():
        cfg.noise.mixed[k] = v
    return cfg


def _example(tree, i):
    return jax.tree.map(lambda a: np.asarray(a[i]), tree)


@pytest.fixture(scope='module')
def same_draw():
    """Device outputs and draws on 8 crops, with the branches spread over the examples."""
    cfg = _cfg()
    n, h, w = 8, 40, 48  # not multiples of 16: the codec's padding is exercised
    rng = np.random.default_rng(0)
    photo = _photo(64)
    clean = np.stack([photo[y:y + h, x:x + w] for y, x in rng.integers(0, 16, (n, 2))])
    clean[0, :6] = 1.0  # white: the camera's highlight paths
    d = dd.draw_params(jax.random.key(3), n, cfg)
    i = np.arange(n)
    both = lambda bits: jnp.asarray(np.stack([1 - bits, bits], 1) * 0.98 + 0.01, jnp.float32)  # noqa: E731
    units = d.mixed._replace(  # example i: sRGB if bit 0, mosaic if bit 1, second round if bit 2 (round 2 flipped)
        srgb_u=both(i % 2), mosaic_u=both(i // 2 % 2), second_u=jnp.asarray((1 - (i // 4) % 2) * 0.98 + 0.01),
        sharpen_u=d.mixed.sharpen_u.at[:, :, 0].set(0.0), smooth_u=d.mixed.smooth_u.at[:, :, 0].set(0.0),
        chroma_u=d.mixed.chroma_u.at[:, :, 0].set(0.0), banding_u=d.mixed.banding_u.at[:, :, 0].set(0.0))
    noise = dd.draw_noise(jax.random.key(4), clean.shape, cfg)
    run = jax.jit(lambda x, d, z: dd.add_noise(x, dd.make_params(d, cfg), z, cfg.noise))
    draws, out = {}, {}
    for coded in (False, True):  # the codec absent / present in both rounds
        draws[coded] = d._replace(mixed=units._replace(jpeg_u=units.jpeg_u.at[:, :, 0].set(0.0 if coded else 1.0)))
        out[coded] = np.asarray(run(clean, draws[coded], noise))
    return cfg, clean, draws, dd.make_params(d, cfg), noise, out


def _reference(cfg, clean, params, d, noise, i):
    camera = CameraParams(rgb2cam=np.asarray(params.rgb2cam[i], np.float64), rgb_gain=float(params.rgb_gain[i]),
                          red_gain=float(params.red_gain[i]), blue_gain=float(params.blue_gain[i]))
    p = mixed.make_params(_example(d.mixed, i), cfg.noise)
    return p, mixed.apply(clean[i], camera, p, _example(noise.mixed, i), cfg.noise.low_light)


def test_same_draw_equals_the_reference_without_compression(same_draw):
    cfg, clean, draws, params, noise, out = same_draw
    for i in range(clean.shape[0]):
        p, ref = _reference(cfg, clean, params, draws[False], noise, i)
        assert not np.any(p.compress)
        assert bool(p.srgb[0]) == bool(i % 2) and bool(p.mosaic[0]) == bool(i // 2 % 2)
        assert bool(p.second_round) == bool(i // 4 % 2)
        assert np.all(p.sharpen > 0) and np.all(p.smooth > 0) and np.all(p.chroma_sigma > 0) and np.all(p.banding > 0)
        for field in ('exposure', 'shot', 'read', 'luma', 'quality', 'order'):  # same formulas on both sides
            np.testing.assert_allclose(getattr(p, field), np.asarray(getattr(params.mixed, field)[i]), rtol=1e-5)
        np.testing.assert_allclose(out[False][i], ref, rtol=0, atol=2e-5, err_msg=f'example {i}')
    assert np.abs(out[False] - clean).mean() > 0.02  # degraded


def test_same_draw_equals_the_reference_with_compression(same_draw):
    """A coefficient within float precision of a .5 step may round differently on the two sides: each such flip
    changes one 8x8 block (16x16 for chroma), so at most 2 % of the pixels may differ (none does on CPU)."""
    cfg, clean, draws, params, noise, out = same_draw
    for i in range(clean.shape[0]):
        p, ref = _reference(cfg, clean, params, draws[True], noise, i)
        assert np.all(p.compress)
        off = np.abs(out[True][i] - ref) > 2e-5
        assert off.mean() <= 0.02, (i, off.mean())
    assert np.abs(out[True] - out[False]).mean() > 1e-3  # the codec did something


def _noise_stats(noisy, clean):
    """Per image: residual std, its mean per channel, inter-channel correlation, lag-1 spatial correlation."""
    r = (noisy - clean).astype(np.float64)
    r = r - r.mean(axis=(1, 2), keepdims=True)
    std = r.std(axis=(1, 2, 3))
    flat = r.reshape(r.shape[0], -1, 3)
    cross = np.mean([np.corrcoef(f.T)[[0, 0, 1], [1, 2, 2]].mean() if f.std() > 0 else 0 for f in flat])
    lag = (r[:, :, 1:] * r[:, :, :-1]).mean() / (r ** 2).mean()
    return std, cross, lag


def test_device_and_reference_are_equal_in_distribution():
    """Independent draws on both sides, flat grey frames: per-image noise level (two-sample KS), inter-channel and
    spatial correlation, and the codec's block boundaries agree."""
    cfg = _cfg()
    n, size = 96, 32
    grey = np.full((n, size, size, 3), 0.4, np.float32)
    rng = np.random.default_rng(7)
    host = np.stack([degradations.add_noise(x, rng, cfg.noise) for x in grey])
    deg = jax.jit(lambda x, k: dd.add_noise(x, dd.make_params(dd.draw_params(k, n, cfg), cfg),
                                            dd.draw_noise(jax.random.fold_in(k, 9), x.shape, cfg), cfg.noise))
    device = np.asarray(deg(grey, jax.random.key(11)))
    (h_std, h_cross, h_lag), (d_std, d_cross, d_lag) = _noise_stats(host, grey), _noise_stats(device, grey)
    assert stats.ks_2samp(h_std, d_std).pvalue > 0.01, (np.percentile(h_std, [10, 50, 90]),
                                                       np.percentile(d_std, [10, 50, 90]))
    assert abs(h_cross - d_cross) < 0.1 and abs(h_lag - d_lag) < 0.1, (h_cross, d_cross, h_lag, d_lag)
    assert abs(np.mean(host - grey) - np.mean(device - grey)) < 0.02  # same bias (clipping, camera curve)
    assert abs(_boundary_over_inner_jump(host) - _boundary_over_inner_jump(device)) < 0.15


def _host(image, n, seed=0, **mixed_fields):
    cfg = get_noise_config()
    for k, v in mixed_fields.items():
        cfg.mixed[k] = v
    rng = np.random.default_rng(seed)
    return np.stack([degradations.add_noise(image, rng, cfg) for _ in range(n)])


def test_each_ingredient_shapes_the_noise():
    """No ISP ops or codec: white-ish noise; mosaic: correlated; luma share: channels move together; banding:
    rows move together; sharpening: more high-frequency power; the codec: 8x8 block boundaries."""
    grey = np.full((48, 48, 3), 0.45, np.float32)
    off = dict(sharpen_prob=0.0, smooth_prob=0.0, chroma_prob=0.0, banding_prob=0.0, jpeg_prob=0.0,
               second_round_prob=0.0, srgb_prob=0.0, exposure_range=(0.2, 0.2))
    plain = _host(grey, 16, **off, mosaic_prob=0.0, luma_share_range=(0.0, 0.0)) - grey
    assert 0.8 < _low_over_high_power(plain) < 1.25
    mosaic = _host(grey, 16, **off, mosaic_prob=1.0) - grey
    assert _low_over_high_power(mosaic) > 3
    grey_grain = _host(grey, 16, **off, mosaic_prob=0.0, luma_share_range=(0.9, 0.9)) - grey
    assert _noise_stats(grey_grain + grey, grey)[1] > 0.6 > 0.2 > _noise_stats(plain + grey, grey)[1]
    banded = _host(grey, 16, **{**off, 'banding_prob': 1.0, 'banding_range': (0.05, 0.05)}, mosaic_prob=0.0,
                   shot_noise_range=(1e-5, 1e-5)) - grey
    rows = banded.mean(axis=(2, 3))
    assert rows.var() > 4 * (banded - banded.mean(axis=2, keepdims=True)).var() / 48
    sharp = _host(grey, 16, **{**off, 'sharpen_prob': 1.0, 'sharpen_range': (1.5, 1.5)}, mosaic_prob=0.0) - grey
    assert _low_over_high_power(sharp) < 0.5 * _low_over_high_power(plain)
    photo = _photo(96)
    coded = _host(photo, 8, **{**off, 'jpeg_prob': 1.0, 'jpeg_quality_range': (20, 20)}, mosaic_prob=0.0,
                  shot_noise_range=(1e-4, 1e-4))
    assert _boundary_over_inner_jump(coded) > 1.3


def test_default_config_uses_mixed_and_passes_the_checks():
    from restorenet_jax.configs import default
    c = default.get_config()
    assert c.data.noise.kind == 'mixed'
    c.init.deblur = c.init.denoise = ''
    c.init.allow_random_backbones = True
    check_config(c)
