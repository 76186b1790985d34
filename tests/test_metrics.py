"""PSNR / SSIM parity with scikit-image, hand computations, and NAFNet's 3-D SSIM."""
import io

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from restorenet_jax.evaluation import metrics


def _photo(name: str, size: int = 96) -> np.ndarray:
    """A bundled skimage photo, centre-cropped to [size, size+8, 3] float64 in [0, 1] (non-square on purpose)."""
    img = getattr(skdata, name)()[..., :3]
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size - 8) // 2
    return img[top:top + size, left:left + size + 8].astype(np.float64) / 255.0


def _noise(x, rng):
    return np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)


def _blur(x, rng):
    return ndimage.gaussian_filter(x, sigma=(1.6, 1.6, 0))


def _jpeg(x, rng):
    buf = io.BytesIO()
    Image.fromarray(np.round(x * 255).astype(np.uint8)).save(buf, format="JPEG", quality=25)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())), np.float64) / 255.0


def _dark_noisy(x, rng):
    # Dark CCTV-like: exposure down, Poisson-ish noise, quantised to 8-bit levels.
    y = 0.3 * x + rng.normal(0, 0.02 + 0.05 * np.sqrt(0.3 * x))
    return np.round(np.clip(y, 0, 1) * 255) / 255


DEGRADATIONS = {"noise": _noise, "blur": _blur, "jpeg": _jpeg, "dark_noisy": _dark_noisy}


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
@pytest.mark.parametrize("kind", sorted(DEGRADATIONS))
def test_psnr_ssim_match_skimage(name, kind):
    rng = np.random.default_rng(0)
    clean = _photo(name)
    degraded = DEGRADATIONS[kind](clean, rng)
    ref_psnr = peak_signal_noise_ratio(clean, degraded, data_range=1)
    ref_ssim = structural_similarity(clean, degraded, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1, channel_axis=-1)
    assert abs(metrics.psnr(clean, degraded) - ref_psnr) < 1e-4
    assert abs(metrics.ssim(clean, degraded) - ref_ssim) < 1e-4
    # The metric is a real discriminator here: degraded images are far from perfect.
    assert ref_ssim < 0.99


def test_psnr_by_hand():
    a = np.zeros((4, 5, 3))
    b = a.copy()
    b[0, 0, 0] = 0.5  # one error of 0.5 among 60 values: MSE = 0.25 / 60
    expected = 10 * np.log10(1.0 / (0.25 / 60))
    assert metrics.psnr(a, b) == pytest.approx(expected, abs=1e-9)
    # data_range scales the peak: the same error on a 0..255 scale.
    assert metrics.psnr(a * 255, b * 255, data_range=255) == pytest.approx(expected, abs=1e-9)
    assert metrics.psnr(a, a) == float("inf")


def test_crop_border_by_hand():
    a = np.zeros((10, 12, 3))
    b = np.zeros((10, 12, 3))
    b[0, :, :] = 1.0  # errors only on the top row: cropped away with crop_border=1
    b[5, 6, 1] = 0.1  # one error inside: MSE over the 8×10×3 interior
    assert metrics.psnr(a, b, crop_border=1) == pytest.approx(10 * np.log10(1 / (0.01 / 240)), abs=1e-9)
    assert metrics.psnr(a, b) < metrics.psnr(a, b, crop_border=1)


def test_y_channel_by_hand():
    a = np.zeros((3, 4, 3))
    b = a.copy()
    b[1, 2] = [1.0, 0.0, 0.0]  # pure red: BasicSR Y = (65.481 + 16) / 255 vs black 16 / 255
    dy = 65.481 / 255
    assert metrics.psnr(a, b, y_channel=True) == pytest.approx(10 * np.log10(12 / dy**2), abs=1e-9)
    y = metrics.rgb_to_y(np.ones((1, 1, 3)))
    assert y.shape == (1, 1, 1) and y[0, 0, 0] == pytest.approx(235 / 255, abs=1e-6)


def test_ssim_y_channel_and_crop_match_skimage_on_y():
    rng = np.random.default_rng(1)
    clean = _photo("astronaut")
    noisy = _noise(clean, rng)
    ya, yb = metrics.rgb_to_y(clean)[4:-4, 4:-4, 0], metrics.rgb_to_y(noisy)[4:-4, 4:-4, 0]
    ref = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
    assert metrics.ssim(clean, noisy, crop_border=4, y_channel=True) == pytest.approx(ref, abs=1e-6)


def test_quantize_rounds_to_uint8_levels():
    rng = np.random.default_rng(2)
    clean = _photo("chelsea")
    out = clean + rng.normal(0, 0.03, clean.shape)  # unclipped float "network output"
    q = lambda x: np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)  # noqa: E731 — BasicSR's tensor2img
    ref_psnr = peak_signal_noise_ratio(q(clean), q(out), data_range=255)
    ref_ssim = structural_similarity(q(clean), q(out), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255, channel_axis=-1)
    assert metrics.psnr(clean, out, quantize=True) == pytest.approx(ref_psnr, abs=1e-6)
    assert metrics.ssim(clean, out, quantize=True) == pytest.approx(ref_ssim, abs=1e-6)
    assert metrics.psnr(clean, out, quantize=True) != pytest.approx(metrics.psnr(clean, out), abs=1e-3)


def _ssim3d_torch(a: np.ndarray, b: np.ndarray) -> float:
    """Independent NAFNet-style 3-D SSIM: torch Conv3d, 11×11×11 Gaussian, replicate padding, float32."""
    torch = pytest.importorskip("torch")
    g = metrics._gaussian_taps()
    kernel = torch.tensor(np.einsum("i,j,k->ijk", g, g, g), dtype=torch.float32)[None, None]

    def f(x):
        x = torch.nn.functional.pad(x[None, None], (5,) * 6, mode="replicate")
        return torch.nn.functional.conv3d(x, kernel)[0, 0]

    x, y = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(m.mean())


def test_ssim3d_matches_torch_conv3d():
    rng = np.random.default_rng(3)
    clean = _photo("coffee", size=48)
    noisy = _noise(clean, rng)
    got = metrics.ssim(clean, noisy, ssim3d=True)
    assert got == pytest.approx(_ssim3d_torch(clean, noisy), abs=1e-4)
    assert abs(got - metrics.ssim(clean, noisy)) > 1e-3  # a genuinely different definition


def test_batched_jax_versions_match_numpy():
    rng = np.random.default_rng(4)
    clean = np.stack([_photo(n, size=48) for n in ("astronaut", "chelsea")])
    noisy = np.stack([_noise(c, rng) for c in clean])
    p = np.asarray(metrics.psnr_batch(jnp.asarray(clean), jnp.asarray(noisy)))
    s = np.asarray(metrics.ssim_batch(jnp.asarray(clean), jnp.asarray(noisy)))
    assert p.shape == (2,) and s.shape == (2,)
    for i in range(2):
        assert p[i] == pytest.approx(metrics.psnr(clean[i], noisy[i]), abs=1e-3)
        assert s[i] == pytest.approx(metrics.ssim(clean[i], noisy[i]), abs=1e-4)
