"""What a new user sees first: the engine `auto` chose is named once, with why, by restore, evaluate and serve; and an
unknown config variant ends every command that takes --config with one line and exit status 2."""
import contextlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.inference import engines
from tests.tiny_model import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
BAD_CONFIG = "configs/bsd64.py:demoo"  # a typo of the demo variant
ENGINE_LINE = re.compile(r"^engine (jax|openvino|onnxruntime) \(auto: [^)]+\), precision \w+ \([^)]*\)$")


def _engine_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("engine ")]


# --- the engine line ------------------------------------------------------------------------------------------------

def test_auto_reasons(monkeypatch):
    assert engines.auto_reason("openvino", "auto") == "auto: CPU, OpenVINO installed"
    assert engines.auto_reason("onnxruntime", "fp32") == "auto: CPU, OpenVINO not installed"
    assert engines.auto_reason("openvino", "int8") == "auto: int8 runs on OpenVINO"
    assert engines.auto_reason("jax", "auto", backend="gpu") == "auto: GPU"
    monkeypatch.setattr(engines, "installed", lambda name: name == "onnxruntime")
    assert engines.auto_reason("jax", "bf16", backend="cpu") == "auto: bf16 asked, ONNX Runtime computes fp32 only"
    monkeypatch.setattr(engines, "installed", lambda name: False)
    assert engines.auto_reason("jax", "fp32", backend="cpu").startswith("auto: CPU without OpenVINO or ONNX Runtime")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory)


def test_restore_and_evaluate_name_the_auto_engine_once(ckpt, tmp_path, capsys):
    from restorenet_jax.apps import evaluate, restore

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    assert restore.main(["--checkpoint", str(ckpt), str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-q",
                         "--engine", "auto"]) == 0
    [line] = _engine_lines(capsys.readouterr().err)
    assert ENGINE_LINE.match(line) and line.startswith(f"engine {engines.default_engine()} "), line
    assert evaluate.main(["--checkpoint", str(ckpt), "--dataset", "embedded", "--limit", "1", "--crop", "32",
                          "--kinds", "blur", "--engine", "auto", "--out", str(tmp_path / "ev"), "-q"]) == 0
    [again] = _engine_lines(capsys.readouterr().err)
    assert again == line
    # Asked for by name, the engine needs no reason.
    assert restore.main(["--checkpoint", str(ckpt), str(tmp_path / "a.png"), "-o", str(tmp_path / "out2"), "-q",
                         "--engine", "jax"]) == 0
    assert _engine_lines(capsys.readouterr().err) == ["engine jax, precision fp32 (asked)"]


def test_serve_names_the_auto_engine_once(ckpt, capsys, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    from restorenet_jax.apps import serve
    from tests.live_server import free_port

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw))  # everything up to serving, no server
    assert serve.main(["--checkpoint", str(ckpt), "--engine", "auto", "--host", "127.0.0.1",
                       "--port", str(free_port())]) == 0
    assert len(started) == 1
    [line] = _engine_lines(capsys.readouterr().err)
    assert ENGINE_LINE.match(line), line


# --- an unknown config variant ----------------------------------------------------------------------------------------

def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "demoo" in lines[0] and "demo, demo_cctv" in lines[0], lines[0]  # names the typo and what exists
    return lines[0]


@contextlib.contextmanager
def _absl_command(monkeypatch, *argv):
    """Runs an absl command's entry point in this process: sys.argv as given, and the flags it defines removed
    afterwards (others defined before, e.g. training's --config, are set aside meanwhile and put back)."""
    from absl import flags

    saved = {name: flags.FLAGS[name] for name in list(flags.FLAGS)}
    for name in ("config",):
        if name in flags.FLAGS:
            delattr(flags.FLAGS, name)
    monkeypatch.setattr(sys, "argv", list(argv))
    try:
        yield
    finally:
        for name in list(flags.FLAGS):
            if name not in saved:
                delattr(flags.FLAGS, name)
        for name, flag in saved.items():
            if name not in flags.FLAGS:
                flags.FLAGS[name] = flag


def test_unknown_variant_in_process(monkeypatch, capsys, tmp_path):
    from restorenet_jax.apps import evaluate, export_degraded
    from restorenet_jax.data import bench_pipeline

    with pytest.raises(SystemExit) as e:
        evaluate.main(["--checkpoint", str(tmp_path), "--dataset", "embedded", "--config", BAD_CONFIG])
    assert e.value.code == 2
    _one_error_line(capsys.readouterr().err)
    for module in (export_degraded, bench_pipeline):
        with _absl_command(monkeypatch, module.__name__, "--config", BAD_CONFIG, "--out", str(tmp_path / "x")), \
                pytest.raises(SystemExit) as e:
            module.run()
        assert e.value.code == 2, module.__name__
        _one_error_line(capsys.readouterr().err)
        assert not (tmp_path / "x").exists()


def test_unknown_variant_training_command():
    proc = subprocess.run([sys.executable, "-m", "restorenet_jax.main", f"--config={BAD_CONFIG}",
                           "--workdir=/nonexistent/never_made"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    _one_error_line(proc.stderr)
    assert not proc.stdout.strip()


# --- the README's command list ------------------------------------------------------------------------------------------

def test_readme_lists_every_console_script_and_the_deploy_extra():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in project["scripts"] if f"`{name}`" not in readme]
    assert not missing, f"README does not list {missing}"
    extras = set(project["optional-dependencies"]) - {"dev"}
    assert all(f'pip install ".[{x}]"' in readme or f"[{x}," in readme or f",{x}]" in readme for x in extras)
    assert "--verbosity" in readme and "file.py:variant" in readme
