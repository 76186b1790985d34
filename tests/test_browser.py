"""A real browser on the upload page: Playwright drives Debian's Chromium (headless, networking features off).

Needs the `playwright` Python package (not a pinned requirement: the test is skipped without it) and
/usr/bin/chromium, which the test installs with apt when running as root and skips otherwise. Playwright's own
browser download is never used.
"""
import io
import os
import shutil
import subprocess

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
