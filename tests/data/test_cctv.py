"""The 'cctv' noise kind: JPEG quantisation like libjpeg's (Pillow cross-check), the device version equal to the numpy
reference for fixed draws, spatially correlated noise (a power spectrum that is not flat, unlike the i.i.d. kinds),
8x8 block boundaries from the compression, and the demo_cctv config."""
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
import skimage.transform
from PIL import Image

from configs import bsd64
from restorenet_jax.configs.data import get_data_config
from restorenet_jax.configs.degradations import get_noise_config
from restorenet_jax.data import cctv, degradations, device_cctv, device_degrade as dd, device_jpeg, jpeg
from restorenet_jax.training.config_check import check_config
from tests.data.test_device_degrade import ReplayRng


def _photo(size: int) -> np.ndarray:
    """[size, size, 3] float32 in [0, 1]: the astronaut photo (edges, texture, flat areas)."""
    return skimage.transform.resize(skimage.data.astronaut()[:400, 50:450], (size, size),
                                    anti_aliasing=True).astype(np.float32)


def _psnr(a, b):
    return -10 * np.log10(np.mean((np.asarray(a, np.float64) - b) ** 2))


# ------------------------------------------------------------------------------------------------- JPEG


def test_jpeg_tables_and_quality_behave_like_pillows_encoder():
    """Pillow (libjpeg) writes the same quantisation tables at every quality, and our decoded error tracks its own."""
    photo = _photo(96)
    u8 = (photo * 255).round().astype(np.uint8)
    ours = []
    for quality in (10, 30, 50, 75, 95):
        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, format='JPEG', quality=quality, subsampling=2)  # 4:2:0 like ours
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            tables = {k: np.asarray(v).reshape(8, 8) for k, v in im.quantization.items()}
            theirs = np.asarray(im.convert('RGB'), np.float32) / 255
        luma, chroma = jpeg.quant_tables(quality)
        np.testing.assert_array_equal(tables[0], luma)
        np.testing.assert_array_equal(tables[1], chroma)
        x = u8.astype(np.float32) / 255
        ours.append(_psnr(jpeg.compress(x, quality), x))
        assert abs(ours[-1] - _psnr(theirs, x)) < 0.5, (quality, ours[-1], _psnr(theirs, x))
    assert np.all(np.diff(ours) > 0.5)  # higher quality, less damage


def test_device_jpeg_equals_the_reference():
    """Pre-rounding coefficients agree to float precision; from the same rounded coefficients both decoders agree
    to 1e-5 (the rounding itself could differ where float summation order moves a value across a .5 boundary)."""
    photo = _photo(128)
    images = np.stack([photo[:40, :56], photo[40:80, 60:116][::-1], photo[80:120, :56][:, ::-1]])  # not /16
    quality = np.asarray([12, 55, 93], np.int32)
    dev_coefs = jax.jit(device_jpeg.coefficients)(images, quality)
    rounded = tuple(jnp.round(c) for c in dev_coefs)
    decoded = np.asarray(jax.jit(device_jpeg.reconstruct, static_argnums=2)(rounded, quality, (40, 56)))
    full = np.asarray(jax.jit(device_jpeg.compress)(images, quality))
    for i, q in enumerate(quality):
        ref_coefs = jpeg.coefficients(images[i], int(q))
        for dev, ref in zip(dev_coefs, ref_coefs):
            assert dev.shape[1:] == ref.shape
            np.testing.assert_allclose(np.asarray(dev[i]), ref, rtol=0, atol=1e-4)  # coefficient / step
        ref = jpeg.reconstruct(tuple(np.asarray(r[i]) for r in rounded), int(q), (40, 56))
        np.testing.assert_allclose(decoded[i], ref, rtol=0, atol=1e-5)
        np.testing.assert_allclose(full[i], jpeg.compress(images[i], int(q)), rtol=0, atol=1e-5)
        assert np.abs(full[i] - images[i]).mean() > 1e-3  # it did compress


# ------------------------------------------------------------------------------------- device == reference


def _replay(d: dd.ParamDraws, noise: dd.NoiseDraws, i: int) -> ReplayRng:
    """Example i's unit draws in cctv.sample_params / draw_noise order."""
    c = d.cctv
    uniform = [*map(float, d.ccm_weights[i]), float(d.red_u[i]), float(d.blue_u[i]), float(d.exposure_u[i])]
    normal = [float(d.rgb_gain_z[i])]
    for r in range(cctv.ROUNDS):
        uniform += [float(c.scale_u[i, r]), float(c.shot_u[i, r])]
        normal.append(float(c.read_z[i, r]))
        uniform += [float(c.chroma_sigma_u[i, r]), float(c.chroma_scale_u[i, r]), float(c.quality_u[i, r])]
    uniform.append(float(c.second_u[i]))
    return ReplayRng(uniform, normal, standard_normal=[np.asarray(noise.cctv.mosaic[i]),
                                                        np.asarray(noise.cctv.chroma[i])])


@pytest.mark.parametrize('rebrighten,preserve_highlights', [(True, True), (False, False)])
def test_device_cctv_equals_the_reference_for_fixed_draws(rebrighten, preserve_highlights):
    cfg = get_data_config()
    cfg.noise.kind = 'cctv'
    cfg.noise.low_light.rebrighten, cfg.noise.low_light.preserve_highlights = rebrighten, preserve_highlights
    n, h, w = 6, 40, 48  # not multiples of 16: the JPEG padding is exercised
    rng = np.random.default_rng(0)
    photo = _photo(64)
    clean = np.stack([photo[y:y + h, x:x + w] for y, x in rng.integers(0, 16, (n, 2))])
    clean[0, :6] = 1.0  # white: the highlight paths of the camera
    d = dd.draw_params(jax.random.key(3), n, cfg)
    # Both branches of the second round; the scale range reaches the full resolution and deep drops.
    d = d._replace(cctv=d.cctv._replace(second_u=jnp.asarray(np.arange(n) % 2, jnp.float32),
                                        scale_u=d.cctv.scale_u.at[0, 0].set(1.0).at[1, 0].set(0.0)))
    noise = dd.draw_noise(jax.random.key(4), clean.shape, cfg)
    params = dd.make_params(d, cfg)
    gains = jax.vmap(lambda a, b, c: jnp.stack([1 / b, 1.0, 1 / c]) / a)(params.rgb_gain, params.red_gain,
                                                                          params.blue_gain)
    camera = (params.rgb2cam, dd._inverse_3x3(params.rgb2cam), gains)
    captured = np.asarray(jax.jit(lambda x, p, z: device_cctv.capture(
        x, camera, params.exposure, p, 0, z, cfg.noise.low_light))(clean, params.cctv, noise.cctv))
    out = np.asarray(jax.jit(lambda x, d, z: dd.add_noise(x, dd.make_params(d, cfg), z, cfg.noise))(clean, d, noise))
    for i in range(n):
        replay = _replay(d, noise, i)
        ref = degradations.add_noise(clean[i], replay, cfg.noise)
        assert replay.exhausted()
        # Up to the compression, everything agrees to 1e-5 (same inputs to the quantiser on both sides)...
        replay = _replay(d, noise, i)
        p = cctv.sample_params(replay, cfg.noise)
        ref_capture = cctv.capture(clean[i], p, 0, cctv.draw_noise(replay, (h, w)), cfg.noise.low_light)
        np.testing.assert_allclose(captured[i], ref_capture, rtol=0, atol=1e-5)
        assert p.second_round == bool(i % 2 == 0) == bool(params.cctv.second_round[i])
        assert p.quality == tuple(int(q) for q in params.cctv.quality[i])
        # ... and so does the result, where the two quantisers round the same way. A coefficient within float
        # precision of a .5 step boundary may round differently (none does here on CPU); each such flip changes
        # one 8x8 block (16x16 for chroma), so at most 1 % of the pixels may differ.
        off = np.abs(out[i] - ref) > 1e-5
        assert off.mean() <= 0.01, (i, off.mean())
    assert np.abs(out - clean).mean() > 0.02  # degraded


# ------------------------------------------------------------------------------------------ what it looks like


def _noisy(kind: str, images: np.ndarray, seed: int = 0) -> np.ndarray:
    cfg = get_noise_config()
    cfg.kind = kind
    rng = np.random.default_rng(seed)
    return np.stack([degradations.add_noise(x, rng, cfg) for x in images])


def _low_over_high_power(residual: np.ndarray) -> float:
    """Mean power of the residual's spectrum at radial frequencies < 0.15 over that at > 0.35 cycles/pixel."""
    residual = residual - residual.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(residual, axes=(1, 2))) ** 2).mean(axis=(0, 3))
    f = np.fft.fftfreq(residual.shape[1])
    radius = np.hypot(f[:, None], f[None, :])
    return float(power[(radius > 0) & (radius < 0.15)].mean() / power[radius > 0.35].mean())


def test_cctv_noise_is_spatially_correlated_and_the_iid_kinds_are_not():
    flat = np.full((24, 64, 64, 3), 0.45, np.float32)  # no content: the residual is the noise alone
    ratios = {kind: _low_over_high_power(_noisy(kind, flat) - flat) for kind in ('cctv', 'low_light', 'gaussian')}
    assert ratios['cctv'] > 10, ratios  # blotches: the power sits at low frequencies
    for kind in ('low_light', 'gaussian'):
        assert 0.8 < ratios[kind] < 1.25, ratios  # white noise: a flat spectrum
    residual = _noisy('cctv', flat) - flat
    chroma = jpeg.rgb_to_ycbcr(residual + 0.5)[..., 1:] - 128
    assert chroma.std() > 2.0  # coloured: the noise moves Cb/Cr (0..255 scale), not only brightness


def _boundary_over_inner_jump(images: np.ndarray) -> float:
    """Mean |luma step| between neighbours across x % 8 == 0 (and y % 8 == 0) block boundaries over inside blocks."""
    y = images @ np.asarray(jpeg.RGB2YCBCR[0], np.float32)
    dx, dy = np.abs(np.diff(y, axis=2)), np.abs(np.diff(y, axis=1))
    boundary = np.arange(1, y.shape[1]) % 8 == 0  # the step from pixel k-1 to k, k a multiple of 8
    return float((dx[:, :, boundary].mean() + dy[:, boundary].mean())
                 / (dx[:, :, ~boundary].mean() + dy[:, ~boundary].mean()))


def test_compression_makes_8x8_block_boundaries():
    photo = _photo(256)
    crops = np.stack([photo[y:y + 64, x:x + 64] for y in range(0, 256, 64) for x in range(0, 256, 64)])
    assert 0.9 < _boundary_over_inner_jump(crops) < 1.1  # the photo has no grid
    assert 0.9 < _boundary_over_inner_jump(_noisy('low_light', crops)) < 1.1
    assert _boundary_over_inner_jump(_noisy('cctv', crops)) > 1.25  # default ranges, noise included
    blocky = np.stack([jpeg.compress(c, 25) for c in crops])
    assert _boundary_over_inner_jump(blocky) > 1.5  # the compression alone


# ------------------------------------------------------------------------------------------------- config


def test_demo_cctv_config_passes_the_checks_and_degrades_a_batch_on_the_device():
    c = bsd64.get_config('demo_cctv')
    check_config(c)
    demo = bsd64.get_config('demo')
    assert c.data.noise.kind == 'cctv' and demo.data.noise.kind != 'cctv'
    c.data.noise.kind = demo.data.noise.kind
    c.eval.held_out_families = demo.eval.held_out_families
    assert c.to_dict() == demo.to_dict()  # only the noise (and so which families are held out) differs
    c = bsd64.get_config('demo_cctv')
    clean = (_photo(32)[None] * np.linspace(0.4, 1.0, 4)[:, None, None, None] * 255).astype(np.uint8)
    inputs, kinds = jax.jit(lambda x, k: dd.degrade(x, None, k, c.data))(clean, dd.step_key(0, 1))
    assert inputs.shape == clean.shape and np.isfinite(np.asarray(inputs)).all()
    assert np.abs(np.asarray(inputs) - clean / 255.0).mean() > 0.01


def test_numpy_cctv_is_deterministic():
    cfg = get_noise_config()
    cfg.kind = 'cctv'
    photo = _photo(48)
    a, b = (degradations.add_noise(photo, np.random.default_rng(5), cfg) for _ in range(2))
    c = degradations.add_noise(photo, np.random.default_rng(6), cfg)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3 and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
