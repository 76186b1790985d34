"""The project as a user installs it: a wheel built from the checkout, installed into a fresh virtual environment,
used from a directory outside the checkout (import, every console script's --help, convert + restore)."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restorenet_jax.convert import torch_models as tm
from tests.checkpoint_fixtures import TINY_ARCHS

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("restorenet-train", "restorenet-restore", "restorenet-serve", "restorenet-evaluate",
           "restorenet-prepare-data", "restorenet-export-degraded", "restorenet-convert", "restorenet-bench",
           "restorenet-export")


def _run(cmd, cwd, env, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} -> {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, venv bin dir, a clean environment, a working directory outside the checkout)."""
    tmp = tmp_path_factory.mktemp("pkg")
    # Build from a copy of what the wheel is made of, so that the build leaves nothing in the checkout.
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "restorenet_jax", src / "restorenet_jax",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist", src],
         tmp, os.environ)
    [wheel] = (tmp / "dist").glob("restorenet_jax-*.whl")
    # A fresh environment whose only link to this one is the installed dependencies (a .pth file): the package
    # itself must come from the wheel.
    venv = tmp / "venv"
    _run([sys._base_executable, "-m", "venv", "--without-pip", venv], tmp, os.environ)
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, os.environ).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q", wheel], tmp,
         os.environ)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    work = tmp / "elsewhere"
    work.mkdir()
    return py, venv / "bin", env, work


def test_import_comes_from_the_wheel(installed):
    py, _, env, work = installed
    out = _run([py, "-c", "import restorenet_jax, restorenet_jax.apps.serve as s; "
                "print(restorenet_jax.__file__); print((s.STATIC_DIR / 'index.html').is_file())"], work, env)
    path, page = out.split()
    assert str(py.parent.parent) in path and not path.startswith(str(ROOT))
    assert page == "True"  # the web page is package data


def test_every_console_script_answers_help(installed):
    _, bindir, env, work = installed
    for script in SCRIPTS:
        out = _run([bindir / script, "--help"], work, env)
        assert "--" in out and len(out.splitlines()) > 3, f"{script} --help printed no options:\n{out}"


def test_convert_then_restore_round_trip(installed):
    _, bindir, env, work = installed
    net = tm.from_arch(TINY_ARCHS["restorenet"], seed=1)
    torch.save({"params": net.state_dict()}, work / "tiny.pth")
    _run([bindir / "restorenet-convert", "to-flax", "tiny.pth", "tiny_model"], work, env)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (21, 34, 3), dtype=np.uint8)).save(work / "frame.png")
    _run([bindir / "restorenet-restore", "--checkpoint", "tiny_model", "frame.png", "--output", "restored"], work, env)
    [out] = (work / "restored").glob("*.png")
    with Image.open(out) as im:
        restored = np.asarray(im.convert("RGB"), np.float32) / 255
    assert restored.shape == (21, 34, 3)
    expected = np.clip(tm.run(net, np.asarray(Image.open(work / "frame.png"), np.float32) / 255), 0, 1)
    assert np.abs(restored - expected).max() <= 1.5 / 255  # the installed code restores as the PyTorch original
