"""Tests of the numpy degradations: determinism, the camera round trip, noise statistics, blur kernels."""
import numpy as np
import pytest
import skimage.data
import skimage.transform

from restorenet_jax.configs.degradations import get_blur_config, get_noise_config
from restorenet_jax.data import camera_pipeline
from restorenet_jax.data import degradations as D

N_FLAT = 3 * 256 * 256  # samples in a flat test image
# Sample variance of N Gaussian draws has relative std sqrt(2 / (N - 1)) (chi-square spread); allow 5 of them.
VAR_RTOL = 5 * np.sqrt(2.0 / (N_FLAT - 1))  # ~1.6 %


@pytest.fixture(scope='module')
def astronaut() -> np.ndarray:
    """[64, 64, 3] natural image in [0, 1] with a grey ramp up to pure white in the last rows (highlights)."""
    img = skimage.transform.resize(skimage.data.astronaut(), (64, 64), anti_aliasing=True).astype(np.float32)
    img[-4:] = np.linspace(0.8, 1.0, 64, dtype=np.float32)[None, :, None]
    return img


def _flat(value: float) -> np.ndarray:
    return np.full((256, 256, 3), value, np.float32)


# ------------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize('kind', ['low_light', 'gaussian', 'poisson'])
def test_add_noise_is_deterministic(astronaut, kind):
    cfg = get_noise_config()
    cfg.kind = kind
    a = D.add_noise(astronaut, np.random.default_rng(7), cfg)
    b = D.add_noise(astronaut, np.random.default_rng(7), cfg)
    c = D.add_noise(astronaut, np.random.default_rng(8), cfg)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3
    assert a.dtype == np.float32 and a.shape == astronaut.shape
    assert a.min() >= 0.0 and a.max() <= 1.0


@pytest.mark.parametrize('kind', ['motion', 'uniform'])
def test_synthetic_blur_is_deterministic(astronaut, kind):
    cfg = get_blur_config()
    cfg.kind = kind
    a = D.synthetic_blur(astronaut, np.random.default_rng(3), cfg)
    b = D.synthetic_blur(astronaut, np.random.default_rng(3), cfg)
    draws = [D.synthetic_blur(astronaut, np.random.default_rng(s), cfg) for s in range(4, 8)]
    np.testing.assert_array_equal(a, b)
    assert any(np.abs(a - d).mean() > 1e-3 for d in draws)  # uniform may repeat a size; 4 draws won't all
    assert a.dtype == np.float32 and a.shape == astronaut.shape


def test_none_kinds_are_identity_and_unknown_kinds_raise(astronaut):
    noise, blur = get_noise_config(), get_blur_config()
    noise.kind, blur.kind = 'none', 'none'
    np.testing.assert_array_equal(D.add_noise(astronaut, np.random.default_rng(0), noise), astronaut)
    np.testing.assert_array_equal(D.synthetic_blur(astronaut, np.random.default_rng(0), blur), astronaut)
    noise.kind, blur.kind = 'speckle', 'defocus'
    with pytest.raises(ValueError, match='speckle'):
        D.add_noise(astronaut, np.random.default_rng(0), noise)
    with pytest.raises(ValueError, match='defocus'):
        D.synthetic_blur(astronaut, np.random.default_rng(0), blur)


def test_danet_kind_without_checkpoint_names_the_convert_command(astronaut):
    cfg = get_noise_config()
    cfg.kind = 'danet'
    with pytest.raises(ValueError, match='convert.danet'):
        D.add_noise(astronaut, np.random.default_rng(0), cfg)


# ------------------------------------------------------------------------------------------ camera model


@pytest.mark.parametrize('preserve_highlights', [True, False])
def test_process_inverts_unprocess(astronaut, preserve_highlights):
    cfg = get_noise_config().low_light
    for seed in range(5):
        camera = D.sample_camera_params(np.random.default_rng(seed), cfg)
        linear = D.unprocess(astronaut, camera, preserve_highlights)
        back = D.process(linear, camera, preserve_highlights)
        np.testing.assert_allclose(back, astronaut, atol=1e-4)
        # The linear image really is a different (darker, colour-shifted) image, not a pass-through.
        assert linear.mean() < astronaut.mean() - 0.1


def test_unprocess_white_point_and_highlight_gains(astronaut):
    camera = D.sample_camera_params(np.random.default_rng(0), get_noise_config().low_light)
    white = np.ones((1, 1, 3))
    # CCM rows sum to 1, so white stays white and only the inverse gains act...
    np.testing.assert_allclose(D.unprocess(white, camera, False)[0, 0], camera.inverse_gains, rtol=1e-6)
    # ...unless the highlight-preserving gains keep it saturated.
    np.testing.assert_allclose(D.unprocess(white, camera, True)[0, 0], 1.0, rtol=1e-6)
    # The test image's ramp reaches the highlight zone, so the round-trip test above exercised the bisection.
    plain = D.unprocess(astronaut, camera, False) / camera.inverse_gains
    assert (plain.mean(axis=-1) > camera_pipeline.HIGHLIGHT_INFLECTION).sum() > 10


def test_exposure_and_rebrighten_semantics(astronaut):
    cfg = get_noise_config()
    cfg.kind = 'low_light'
    cfg.low_light.shot_noise_range = (1e-12, 1e-12)  # read noise exp(2.18 log 1e-12 + 1.2 + ...) ~ 1e-25
    cfg.low_light.exposure_range = (0.25, 0.25)
    cfg.low_light.rebrighten = True
    bright = D.add_noise(astronaut, np.random.default_rng(1), cfg)
    np.testing.assert_allclose(bright, astronaut, atol=1e-4)  # exposure undone, no visible noise
    cfg.low_light.rebrighten = False
    dark = D.add_noise(astronaut, np.random.default_rng(1), cfg)
    assert dark.mean() < 0.8 * astronaut.mean()  # left dark: the "dark CCTV" look


# ----------------------------------------------------------------------------------------- noise levels


@pytest.mark.parametrize('x', [0.05, 0.5])
def test_read_shot_noise_variance(x):
    shot, read = 0.01, 1e-3
    noisy = D.add_read_shot_noise(np.full((N_FLAT,), x), np.random.default_rng(0), shot, read)
    expected = shot * x + read
    assert abs(noisy.var() / expected - 1) < VAR_RTOL
    assert abs(noisy.mean() - x) < 5 * np.sqrt(expected / N_FLAT)


def test_gaussian_noise_sigma():
    cfg = get_noise_config()
    cfg.kind = 'gaussian'
    cfg.gaussian.sigma_range = (0.1, 0.1)  # 0.5 +- 5 sigma stays inside [0, 1]: clipping is negligible
    noisy = D.add_noise(_flat(0.5), np.random.default_rng(0), cfg)
    assert abs(noisy.var() / 0.01 - 1) < VAR_RTOL
    assert abs(noisy.mean() - 0.5) < 5 * 0.1 / np.sqrt(N_FLAT)


def test_poisson_noise_mean_and_variance():
    cfg = get_noise_config()
    cfg.kind = 'poisson'
    cfg.poisson.peak_range = (50.0, 50.0)
    x = 0.3  # 15 photons on average; counts above 50 (clipped) have probability ~1e-10
    noisy = D.add_noise(_flat(x), np.random.default_rng(0), cfg)
    # Poisson(15): var of the sample variance = (mu4 - sigma^4) / N = 15 * 31 / N -> rel std 0.3 %; 5x of it.
    assert abs(noisy.var() / (x / 50) - 1) < 5 * np.sqrt(15 * 31 / N_FLAT) / 15
    assert abs(noisy.mean() - x) < 5 * np.sqrt(x / 50 / N_FLAT)
    np.testing.assert_allclose(noisy * 50, np.round(noisy * 50), atol=1e-4)  # integer photon counts


def test_read_vs_shot_noise_relation():
    cfg = get_noise_config().low_light
    rng = np.random.default_rng(0)
    n = 4000
    levels = np.array([D.sample_noise_levels(rng, cfg) for _ in range(n)])
    log_shot, log_read = np.log(levels[:, 0]), np.log(levels[:, 1])
    assert log_shot.min() >= np.log(1e-4) and log_shot.max() <= np.log(0.012)
    slope, intercept = np.polyfit(log_shot, log_read, 1)
    residual_std = (log_read - slope * log_shot - intercept).std()
    # Standard errors: slope 0.26 / (std(log_shot) sqrt(n)) ~ 0.003; residual std 0.26 / sqrt(2n) ~ 0.003.
    assert abs(slope - 2.18) < 0.02
    assert abs(intercept - 1.20) < 0.15
    assert abs(residual_std - 0.26) < 0.015


# ------------------------------------------------------------------------------------------------- blur


def _anisotropy(kernel: np.ndarray) -> float:
    """Ratio of the principal second moments of the kernel mass (1 for isotropic kernels)."""
    ys, xs = np.mgrid[: kernel.shape[0], : kernel.shape[1]]
    w = kernel / kernel.sum()
    coords = np.stack([ys.ravel(), xs.ravel()])
    mean = coords @ w.ravel()
    centred = coords - mean[:, None]
    cov = (centred * w.ravel()) @ centred.T
    eig = np.linalg.eigvalsh(cov)
    return eig[1] / max(eig[0], 1e-12)


@pytest.mark.parametrize('size', [1, 4, 9, 25])
def test_kernels_are_normalised_non_negative_and_sized(size):
    params = get_blur_config().motion.params
    for kernel in (D.uniform_blur_kernel(size), D.motion_blur_kernel(np.random.default_rng(size), size, **params)):
        assert kernel.shape == (size, size)
        assert kernel.min() >= 0.0
        assert abs(kernel.sum() - 1.0) < 1e-5


def test_motion_kernel_has_a_direction():
    params = get_blur_config().motion.params
    ratios = [_anisotropy(D.motion_blur_kernel(np.random.default_rng(s), 15, **params)) for s in range(20)]
    assert np.median(ratios) > 5.0
    assert _anisotropy(D.uniform_blur_kernel(15)) == pytest.approx(1.0)
    # A straight trajectory is a thin line: almost all the spread is along one axis.
    straight = dict(params, curvature=0.0, length_range=(1.0, 1.0))
    assert _anisotropy(D.motion_blur_kernel(np.random.default_rng(0), 15, **straight)) > 20.0


def test_uniform_blur_keeps_a_constant_image():
    image = _flat(0.37)[:40, :50]
    out = D.apply_blur_kernel(image, D.uniform_blur_kernel(9))
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_blur_of_an_impulse_is_the_centred_kernel():
    image = np.zeros((31, 31, 3), np.float32)
    image[15, 15] = 1.0
    kernel = D.motion_blur_kernel(np.random.default_rng(0), 9, **get_blur_config().motion.params)
    out = D.apply_blur_kernel(image, kernel)
    # Convolution (not correlation) reproduces the kernel itself, centred on the impulse.
    np.testing.assert_allclose(out[11:20, 11:20, 0], kernel, atol=1e-6)
    assert abs(out.sum() / 3 - 1.0) < 1e-5


@pytest.mark.parametrize('kind', ['motion', 'uniform'])
def test_blur_preserves_mean(astronaut, kind):
    cfg = get_blur_config()
    cfg.kind = kind
    for seed in range(3):
        out = D.synthetic_blur(astronaut, np.random.default_rng(seed), cfg)
        assert out.shape == astronaut.shape
        assert abs(out.mean() - astronaut.mean()) < 0.01
        assert np.abs(out - astronaut).mean() > 0.005  # it did blur
