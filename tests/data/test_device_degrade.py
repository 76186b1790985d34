"""The device degradations against the numpy reference: same formulas for fixed parameters and unit draws (1e-5),
the kinds drawn with the configured ratio (chi-square), noise variance vs signal level, and a jitted run on a batch
sharded over 8 simulated devices."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from restorenet_jax.configs.data import get_data_config
from restorenet_jax.data import device_camera, device_degrade as dd, transforms
from restorenet_jax.data.transforms import KINDS
from tests.data.conftest import ROOT


class ReplayRng:
    """Stands in for np.random.Generator: replays given unit draws in call order (uniform: U(0, 1) values,
    normal: N(0, 1) values, choice: indices, standard_normal: whole arrays), scaled as numpy scales them."""

    def __init__(self, uniform=(), normal=(), choice=(), standard_normal=()):
        self.q = {'uniform': list(uniform), 'normal': list(normal), 'choice': list(choice),
                  'standard_normal': list(standard_normal)}

    def _take(self, name, size):
        n = 1 if size is None else int(np.prod(size))
        values, self.q[name] = self.q[name][:n], self.q[name][n:]
        assert len(values) == n, f'reference drew more {name} values than replayed'
        return values[0] if size is None else np.asarray(values, np.float64).reshape(size)

    def uniform(self, low=0.0, high=1.0, size=None):
        return low + (high - low) * self._take('uniform', size)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return loc + scale * self._take('normal', size)

    def choice(self, a, p=None):
        return np.asarray(a)[self.q['choice'].pop(0)]

    def standard_normal(self, shape, dtype=np.float64):
        z = self.q['standard_normal'].pop(0)
        assert z.shape == tuple(shape)
        return z.astype(dtype)

    def exhausted(self):
        return not any(self.q.values())


def _replay(d, i, noise_kind, blur_kind, with_blur, with_noise, normal):
    """The reference's draws for example i, in its call order: synthetic blur (if made), then the noise."""
    uniform, norm, choice, std = [], [], [], []
    if with_blur and blur_kind != 'none':
        choice.append(int(d.size_index[i]))
        if blur_kind == 'motion':
            uniform += [float(d.length_u[i]), float(d.heading_u[i])]
            norm += [float(v) for v in d.turns_z[i]]
    if with_noise:
        if noise_kind == 'low_light':
            uniform += [float(v) for v in d.ccm_weights[i]]
            norm.append(float(d.rgb_gain_z[i]))
            uniform += [float(d.red_u[i]), float(d.blue_u[i]), float(d.exposure_u[i]), float(d.shot_u[i])]
            norm.append(float(d.read_z[i]))
            std.append(np.asarray(normal[i]))
        elif noise_kind == 'gaussian':
            uniform.append(float(d.sigma_u[i]))
            std.append(np.asarray(normal[i]))
    return ReplayRng(uniform, norm, choice, std)


def _cfg(noise_kind, blur_kind, **low_light):
    cfg = get_data_config()
    cfg.noise.kind, cfg.blur.kind = noise_kind, blur_kind
    cfg.blur.motion.size_range = (3, 9)
    cfg.blur.uniform.size_range = (3, 7)
    for k, v in low_light.items():
        cfg.noise.low_light[k] = v
    return cfg


# (noise, blur, low-light overrides): every noise model with normal draws, both kernel families, both low-light
# variants (rebrightened with highlight-preserving gains; dark with plain gains).
CASES = [('low_light', 'motion', {}),
         ('low_light', 'uniform', {'rebrighten': False, 'preserve_highlights': False}),
         ('gaussian', 'motion', {}),
         ('none', 'uniform', {})]


@pytest.mark.parametrize('noise_kind,blur_kind,low_light', CASES)
def test_equals_numpy_reference_for_fixed_draws(noise_kind, blur_kind, low_light):
    cfg = _cfg(noise_kind, blur_kind, **low_light)
    n, size = 12, 20
    rng = np.random.default_rng(1)
    # Smooth images with deep shadows. The clean ones stay <= 0.95: blurring them here (direct convolution) and
    # in the reference (FFT) differs by ~1e-7, which the reference's inverse tone curve (infinite slope at white)
    # would amplify past 1e-5 near white. The real degraded images (the same in both) do reach white, so the
    # highlight paths are compared here too (and in test_camera_pipeline_on_the_full_range).
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    base = np.stack([yy, xx, 1 - 0.5 * (yy + xx)], -1)
    clean = np.clip(base[None] * rng.uniform(0.2, 0.95, (n, 1, 1, 3)), 0, 0.95).astype(np.float32)
    real = np.clip(clean * 1.15 + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
    assert (real == 1).any()
    pair_kind = np.arange(n) % 3  # blur, noise, clean pairs
    d = dd.draw_params(jax.random.key(7), n, cfg)
    d = d._replace(kind=jnp.asarray((np.arange(n) // 3) % 4, jnp.int32))  # every kind with every pair kind
    noise = dd.draw_noise(jax.random.key(8), clean.shape, cfg)
    out = jax.jit(lambda c, r, p, d, z: dd.apply(c, r, p, dd.make_params(d, cfg), z, cfg))(
        clean, real, pair_kind, d, noise)
    out = np.asarray(out)
    for i in range(n):
        kind, pk = KINDS[int(d.kind[i])], dd.PAIR_KINDS[pair_kind[i]]
        with_blur = kind in ('blur', 'blur_noise') and pk != 'blur'
        with_noise = kind == 'blur_noise' or (kind == 'noise' and pk != 'noise')
        replay = _replay(d, i, noise_kind, blur_kind, with_blur, with_noise, noise.normal)
        inp = clean[i] if pk == 'clean' else real[i]
        ref = transforms.degrade(inp, clean[i], kind, pk, replay, cfg)
        assert replay.exhausted(), (kind, pk)
        np.testing.assert_allclose(out[i], ref, rtol=0, atol=1e-5, err_msg=f'{kind} on a {pk} pair')
    assert not np.allclose(out, clean, atol=1e-3)  # something was degraded


@pytest.mark.parametrize('preserve_highlights', [True, False])
def test_camera_pipeline_on_the_full_range(preserve_highlights):
    """unprocess / process against the reference on the same inputs, white and near-white included."""
    from restorenet_jax.data import camera_pipeline

    cfg = _cfg('low_light', 'none')
    n = 4
    p = dd.make_params(dd.draw_params(jax.random.key(5), n, cfg), cfg)
    levels = np.concatenate([np.linspace(0, 1, 61), [0.999, 0.9999, 1.0]]).astype(np.float32)
    rng = np.random.default_rng(2)
    image = rng.choice(levels, (n, 32, 32, 3))
    image[:, :8] = rng.choice(levels[-12:], (n, 8, 32, 1))  # near-white grays: the highlight gains
    gains = device_camera.inverse_gains(p.rgb_gain, p.red_gain, p.blue_gain)
    linear = np.asarray(device_camera.unprocess(jnp.asarray(image), p.rgb2cam, gains, preserve_highlights))
    # The brightened linear image reaches the highlight inversion in process.
    back = np.asarray(device_camera.process(jnp.asarray(linear * 1.3), dd._inverse_3x3(p.rgb2cam), gains,
                                            preserve_highlights))
    for i in range(n):
        cam = camera_pipeline.CameraParams(rgb2cam=np.asarray(p.rgb2cam[i], np.float64), rgb_gain=float(p.rgb_gain[i]),
                                           red_gain=float(p.red_gain[i]), blue_gain=float(p.blue_gain[i]))
        ref = camera_pipeline.unprocess(image[i], cam, preserve_highlights)
        np.testing.assert_allclose(linear[i], ref, rtol=0, atol=1e-5)
        np.testing.assert_allclose(back[i], camera_pipeline.process(linear[i] * 1.3, cam, preserve_highlights),
                                   rtol=0, atol=1e-5)
    gray = (linear * 1.3 / np.asarray(gains)[:, None, None, :]).mean(-1)
    assert (gray > 0.9).mean() > 0.01  # the highlight bisection was really used


def test_motion_kernels_and_cameras_equal_the_reference_draws():
    from restorenet_jax.data import camera_pipeline, degradations

    cfg = _cfg('low_light', 'motion')
    cfg.blur.motion.size_range = (5, 25)
    d = dd.draw_params(jax.random.key(3), 16, cfg)
    p = dd.make_params(d, cfg)
    sizes = np.arange(5, 26, 2)
    for i in range(16):
        s, k = sizes[int(d.size_index[i])], p.kernel.shape[-1]
        replay = ReplayRng([float(d.length_u[i]), float(d.heading_u[i])], [float(v) for v in d.turns_z[i]])
        ref = degradations.motion_blur_kernel(replay, int(s), **cfg.blur.motion.params)
        o = (k - s) // 2
        kernel = np.asarray(p.kernel[i])
        np.testing.assert_allclose(kernel[o:o + s, o:o + s], ref, atol=1e-6)
        assert kernel.sum() == pytest.approx(1.0, abs=1e-6) and np.abs(kernel[o:o + s, o:o + s]).sum() == \
            pytest.approx(1.0, abs=1e-6)  # nothing outside the kernel's own square
        cam = camera_pipeline.sample_camera_params(
            ReplayRng([*map(float, d.ccm_weights[i]), float(d.red_u[i]), float(d.blue_u[i])],
                      [float(d.rgb_gain_z[i])]), cfg.noise.low_light)
        np.testing.assert_allclose(p.rgb2cam[i], cam.rgb2cam, atol=1e-6)
        np.testing.assert_allclose([p.rgb_gain[i], p.red_gain[i], p.blue_gain[i]],
                                   [cam.rgb_gain, cam.red_gain, cam.blue_gain], rtol=1e-6)
        np.testing.assert_allclose(dd._inverse_3x3(p.rgb2cam)[i], cam.cam2rgb, atol=1e-5)


@pytest.mark.parametrize('ratio', ['13:2:2:1', '1:1:3:0'])
def test_kinds_follow_the_ratio(ratio):
    cfg = get_data_config()
    cfg.ratio = ratio
    n = 4000
    kinds = np.asarray(jax.jit(lambda k: dd.draw_params(k, n, cfg).kind)(jax.random.key(11)))
    counts = np.bincount(kinds, minlength=4)
    probs = transforms.parse_ratio(ratio)
    assert counts[probs == 0].sum() == 0
    keep = probs > 0
    assert stats.chisquare(counts[keep], n * probs[keep]).pvalue > 1e-3, counts


def _noise_std_by_level(cfg, levels, params_fn, n=64, size=24):
    """Empirical per-level noise of `add_noise` on flat gray images: (mean, variance) per level."""
    images = jnp.asarray(np.repeat(np.asarray(levels, np.float32), n)[:, None, None, None]
                         * np.ones((1, size, size, 3), np.float32))
    batch = images.shape[0]
    params = params_fn(dd.make_params(dd.draw_params(jax.random.key(0), batch, cfg), cfg))
    noise = dd.draw_noise(jax.random.key(1), images.shape, cfg)
    y = np.asarray(jax.jit(lambda x, p, z: dd.add_noise(x, p, z, cfg.noise))(images, params, noise))
    y = y.reshape(len(levels), -1)
    return y.mean(-1), y.var(-1), params


def test_noise_variance_follows_the_signal_level():
    levels = [0.1, 0.3, 0.6]
    # Poisson: mean x, variance x / peak.
    cfg = _cfg('poisson', 'none')
    mean, var, _ = _noise_std_by_level(cfg, levels, lambda p: p._replace(peak=jnp.full_like(p.peak, 50.0)))
    np.testing.assert_allclose(mean, levels, rtol=0.01)
    np.testing.assert_allclose(var, np.asarray(levels) / 50.0, rtol=0.05)
    # Gaussian: variance sigma^2 whatever the level.
    cfg = _cfg('gaussian', 'none')
    _, var, _ = _noise_std_by_level(cfg, levels, lambda p: p._replace(sigma=jnp.full_like(p.sigma, 0.03)))
    np.testing.assert_allclose(var, 0.03**2, rtol=0.05)
    # Low light: in the camera's linear space the variance is shot * x + read (x = the linear signal). Levels and
    # noise chosen so that nothing clips, which would bias the variance.
    cfg = _cfg('low_light', 'none', rebrighten=False, preserve_highlights=False)
    shot, read = 3e-4, 1e-6
    fixed = lambda p: p._replace(  # noqa: E731
        shot=jnp.full_like(p.shot, shot), read=jnp.full_like(p.read, read), exposure=jnp.ones_like(p.exposure))
    levels = [0.3, 0.5, 0.7]
    _, _, params = _noise_std_by_level(cfg, levels, fixed)
    images = np.repeat(np.asarray(levels, np.float32), 64)[:, None, None, None] * np.ones((1, 24, 24, 3), np.float32)
    noisy = dd.add_noise(jnp.asarray(images), params, dd.draw_noise(jax.random.key(1), images.shape, cfg), cfg.noise)
    gains = device_camera.inverse_gains(params.rgb_gain, params.red_gain, params.blue_gain)
    to_linear = lambda x: device_camera.unprocess(x, params.rgb2cam, gains, False)  # noqa: E731
    signal = np.asarray(to_linear(jnp.asarray(images)))  # [B, H, W, 3]: flat per example (its own camera)
    observed = np.asarray(to_linear(noisy))  # process is inverted exactly where nothing clipped
    assert signal.min() > 8 * np.sqrt(shot * signal.min() + read)  # far from the clip at 0
    expected = shot * signal[:, 0, 0, :] + read  # [B, 3]
    measured = observed.reshape(len(images), -1, 3).var(axis=1)
    ratio = (measured / expected).reshape(len(levels), -1, 3).mean(axis=1)  # per level and channel
    np.testing.assert_allclose(ratio, 1.0, rtol=0.03)
    assert expected.max() > 3 * expected.min()  # the levels really differ in noise: heteroscedastic


SHARDED = r'''
import json, jax, numpy as np, jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from restorenet_jax.configs.data import get_data_config
from restorenet_jax.data import device_degrade as dd
assert jax.device_count() == 8
cfg = get_data_config()
cfg.blur.motion.size_range = (3, 9)
rng = np.random.default_rng(0)
clean = rng.integers(0, 256, (16, 24, 24, 3), dtype=np.uint8)
blurred = rng.integers(0, 256, (16, 24, 24, 3), dtype=np.uint8)
pair_kind = np.arange(16, dtype=np.int32) % 3
sh = NamedSharding(Mesh(np.asarray(jax.devices()), ('data',)), P('data'))
fn = jax.jit(lambda c, b, k, p: dd.degrade(c, b, k, cfg, p))
key = dd.step_key(0, 5)
args = [jax.device_put(a, sh) for a in (clean, blurred)] + [key, jax.device_put(pair_kind, sh)]
x, kinds = fn(*args)
ref, _ = fn(clean, blurred, key, pair_kind)  # one device
print(json.dumps({'same_sharding': x.sharding.is_equivalent_to(sh, 4) and kinds.sharding.is_equivalent_to(sh, 1),
                  'shards': len(x.addressable_shards), 'max_diff': float(np.abs(np.asarray(x) - np.asarray(ref)).max()),
                  'kinds': np.bincount(np.asarray(kinds), minlength=4).tolist()}))
'''


def test_jits_sharded_over_8_devices():
    env = dict(os.environ, XLA_FLAGS=(os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'),
               JAX_PLATFORMS='cpu')
    proc = subprocess.run([sys.executable, '-c', SHARDED], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['same_sharding'] and result['shards'] == 8
    assert result['max_diff'] < 1e-5  # the same degradations as on one device
    assert sum(result['kinds']) == 16
