"""Nothing leaves the machine: with the package imported, OpenVINO writes nothing under HOME and forks no sender; the
same holds for restore, evaluate and serve run with the OpenVINO engine (HOME an empty folder, one subprocess each)."""
import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO not installed")


@needs_openvino
def test_openvino_telemetry_is_off(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    code = ("import restorenet_jax, openvino as ov, sys; ov.Core(); "
            "assert sys.modules.get('openvino_telemetry') is None")
    proc = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "fork" not in proc.stderr
    assert list(home.iterdir()) == []


# --- the three commands that run a model, with OpenVINO, one subprocess each ----------------------------------------

def _env(home):
    # A bare environment: HOME an empty folder, no cache or config locations inherited from the test run.
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu",
            "RESTORENET_PRECISION": "fp32"}


def _assert_home_untouched(home, stderr):
    assert "fork" not in stderr, stderr[-2000:]
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []


@pytest.fixture(scope="module")
def offline_inputs(tmp_path_factory):
    """(checkpoint, image folder, prepared data dir): all outside HOME."""
    from tests.data.conftest import bsd_tree, prepare
    from tests.tiny_model import tiny_checkpoint

    root = tmp_path_factory.mktemp("offline_inputs")
    images = root / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(images / "a.png")
    bsd_tree(root / "BSD_B", [1, 2], h=24, w=32)
    prepare("bsd_b", root / "BSD_B", root / "tfds")
    return tiny_checkpoint(tmp_path_factory), images, root / "tfds"


def _home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return home


@needs_openvino
def test_restore_with_openvino_writes_nothing_under_home(offline_inputs, tmp_path):
    ckpt, images, _ = offline_inputs
    home = _home(tmp_path)
    proc = subprocess.run([sys.executable, "-W", "always", "-m", "restorenet_jax.restore", "--checkpoint", str(ckpt),
                           str(images), "-o", str(tmp_path / "out"), "--engine", "openvino", "-q"], cwd=ROOT,
                          capture_output=True, text=True, env=_env(home), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "a.png").is_file()
    _assert_home_untouched(home, proc.stderr)


@needs_openvino
def test_evaluate_with_openvino_writes_nothing_under_home(offline_inputs, tmp_path):
    ckpt, _, data_dir = offline_inputs
    home = _home(tmp_path)
    proc = subprocess.run([sys.executable, "-W", "always", "-m", "restorenet_jax.evaluate", "--checkpoint", str(ckpt),
                           "--dataset", "bsd_b", "--split", "train", "--kinds", "blur", "--limit", "1",
                           "--data-dir", str(data_dir), "--out", str(tmp_path / "ev"), "--engine", "openvino", "-q"],
                          cwd=ROOT, capture_output=True, text=True, env=_env(home), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "ev").glob("*.json"))
    _assert_home_untouched(home, proc.stderr)


@needs_openvino
def test_serve_with_openvino_writes_nothing_under_home(offline_inputs, tmp_path):
    pytest.importorskip("uvicorn")
    import httpx

    from tests.live_server import free_port

    ckpt, images, _ = offline_inputs
    home = _home(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-W", "always", "-m", "restorenet_jax.serve", "--checkpoint", str(ckpt),
                             "--engine", "openvino", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(home))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
        r = httpx.post(f"http://127.0.0.1:{port}/api/restore", timeout=120,
                       files={"image": ("a.png", (images / "a.png").read_bytes(), "image/png")})
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    finally:
        proc.send_signal(signal.SIGINT)  # as Ctrl-C stops it
        try:
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    _assert_home_untouched(home, stderr)
