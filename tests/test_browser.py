"""A real browser on the upload page: Playwright drives Debian's Chromium (headless, networking features off).

Needs the `playwright` Python package (not a pinned requirement: the test is skipped without it) and
/usr/bin/chromium, which the test installs with apt when running as root and skips otherwise. Playwright's own
browser download is never used.
"""
import io
import os
import shutil
import subprocess
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.apps import serve
from tests.live_server import live_server
from tests.tiny_model import gentle_restorer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
H, W = 40, 56

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def _ensure_chromium() -> None:
    """Installs Debian's chromium through apt if missing (root only); skips the test when that is impossible."""
    if os.path.exists(CHROMIUM):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and apt-get cannot install it here (not root or no apt)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.skip(f"apt-get could not install chromium: {proc.stderr.strip().splitlines()[-1:]}")


@pytest.fixture(scope="module")
def browser():
    _ensure_chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    restorer = gentle_restorer(tmp_path_factory)
    with live_server(serve.create_app(restorer, serve.ServeSettings())) as url:
        yield url, restorer


# Every <img> the person can see must have loaded (a visible image without pixels is a broken-image icon).
BROKEN_IMAGES_JS = """() => [...document.images]
    .filter((img) => img.checkVisibility() && !(img.complete && img.naturalWidth > 0))
    .map((img) => img.id || img.alt)"""


def _noisy_scene(h, w, seed=0) -> np.ndarray:
    """A dim gradient with a few sharp bars and grain: something whose restoration is visible at full size."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    img = 0.15 + 0.5 * x[..., None] * [1, 0.85, 0.6] + 0.1 * y[..., None]
    img[:, (np.arange(w) // 12) % 5 == 0] *= 0.4
    return np.clip(np.round((img + 0.08 * rng.standard_normal((h, w, 3))) * 255), 0, 255).astype(np.uint8)


def _box(page, selector) -> dict:
    return page.eval_on_selector(selector, "el => { const r = el.getBoundingClientRect(); return "
                                           "{x: r.x, width: r.width, height: r.height}; }")


def test_no_broken_images_before_an_upload(browser, site):
    url, _ = site
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url + "/")
    assert page.evaluate(BROKEN_IMAGES_JS) == []
    assert page.is_visible("#placeholder") and page.is_hidden("#viewer")
    page.close()


def test_comparison_at_full_resolution_with_a_keyboard_slider(browser, site, tmp_path):
    url, _ = site
    h, w = 200, 300
    upload = tmp_path / "scene.png"
    Image.fromarray(_noisy_scene(h, w)).save(upload)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url + "/")
    page.set_input_files("#file", str(upload))
    page.wait_for_selector("#viewer", state="visible")
    assert page.evaluate(BROKEN_IMAGES_JS) == []  # the original alone, no empty "restored" box yet
    page.click("#submit")
    page.wait_for_selector("#restored", state="visible", timeout=120_000)
    assert page.evaluate(BROKEN_IMAGES_JS) == []
    for sel in ("#original", "#restored"):  # one image pixel per CSS pixel, not shrunk to fit a column
        assert page.eval_on_selector(sel, "el => [el.naturalWidth, el.naturalHeight]") == [w, h]
        box = _box(page, sel)
        assert (box["width"], box["height"]) == (w, h), (sel, box)

    def divider_at() -> float:
        return round(_box(page, "#divider")["x"] + 1 - _box(page, "#stage")["x"])

    assert page.input_value("#split") == "50" and divider_at() == w // 2
    page.focus("#split")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    assert page.input_value("#split") == "55" and divider_at() == round(0.55 * w)
    page.screenshot(path="/tmp/restorenet_compare.png", full_page=True)  # for a person to look at
    page.keyboard.press("Home")
    assert page.input_value("#split") == "0" and divider_at() == 0
    page.keyboard.press("ArrowRight")
    assert page.input_value("#split") == "1"

    # Everything is reachable with Tab: the form, the download link, the slider, the zoom buttons and the frame.
    page.focus("#file")
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id || document.activeElement.textContent"))
    for target in ("submit", "download", "split", "Fit", "200%", "frame"):
        assert target in reached, (target, reached)
    page.click("button[data-zoom='2']")
    assert _box(page, "#restored")["width"] == 2 * w
    page.close()


def test_a_large_image_pans_at_full_size(browser, site, tmp_path):
    url, _ = site
    h, w = 160, 1600  # wider than the window
    upload = tmp_path / "wide.png"
    Image.fromarray(_noisy_scene(h, w, seed=1)).save(upload)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url + "/")
    page.set_input_files("#file", str(upload))
    page.click("#submit")
    page.wait_for_selector("#restored", state="visible", timeout=120_000)
    assert _box(page, "#restored")["width"] == w
    scroll = page.eval_on_selector("#frame", "el => [el.scrollWidth, el.clientWidth]")
    assert scroll[0] >= w > scroll[1]  # the frame scrolls instead of shrinking the image
    page.eval_on_selector("#frame", "el => { el.scrollLeft = 300; }")
    assert page.eval_on_selector("#frame", "el => el.scrollLeft") == 300
    page.click("button[data-zoom='0']")  # fit: the whole width in view
    assert _box(page, "#restored")["width"] <= scroll[1]
    page.close()


def test_upload_view_and_download(browser, site, tmp_path):
    url, restorer = site
    rng = np.random.default_rng(0)
    src = (np.linspace(0, 1, W)[None, :, None] * np.linspace(0.3, 1, H)[:, None, None] * [1, 0.8, 0.5]
           + 0.1 * rng.random((H, W, 3)))
    src8 = np.clip(np.round(src * 255), 0, 255).astype(np.uint8)
    upload = tmp_path / "night cam 1.png"
    Image.fromarray(src8).save(upload)

    page = browser.new_page(accept_downloads=True)
    page.goto(url + "/")
    page.set_input_files("#file", str(upload))
    page.wait_for_function("document.getElementById('original').naturalWidth > 0")
    page.click("#submit")
    page.wait_for_selector("#download", state="visible", timeout=120_000)
    page.wait_for_function(f"document.getElementById('restored').naturalWidth === {W}")
    assert page.is_hidden("#error")
    assert "Done" in page.inner_text("#message")

    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "download.png"
    info.value.save_as(saved)
    got = np.asarray(Image.open(saved))
    assert got.shape == (H, W, 3)
    expected = np.round(restorer(src8.astype(np.float32) / 255) * 255)
    assert np.abs(got.astype(np.float64) - expected).max() <= 1
    page.close()


def test_error_is_shown(browser, site, tmp_path):
    url, _ = site
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page = browser.new_page()
    page.goto(url + "/")
    page.set_input_files("#file", str(bad))
    page.click("#submit")
    page.wait_for_selector("#error", state="visible", timeout=60_000)
    text = page.inner_text("#error")
    assert "415" in text and "not an image" in text
    assert page.is_hidden("#download")
    page.close()


@pytest.mark.parametrize("path,title", [("/docs", ".swagger-ui .info .title"), ("/redoc", ".api-info h1")])
def test_api_docs_render_with_every_outside_request_blocked(browser, site, path, title):
    # Any request that is not to the service itself is refused, as on a machine without internet access: the
    # documentation pages must render from what the service serves.
    url, _ = site
    blocked, local = [], []

    def only_local(route):
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            local.append(route.request.url)
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page = browser.new_page()
    page.route("**/*", only_local)
    page.goto(url + path)
    page.wait_for_selector(title, state="visible", timeout=60_000)
    assert "RestoreNet" in page.inner_text(title)
    assert blocked == []
    assert any(u.endswith(".js") for u in local)  # the page's script came from the service
    page.close()
