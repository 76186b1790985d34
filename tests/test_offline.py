"""Nothing leaves the machine: with the package imported, OpenVINO writes nothing under HOME and forks no sender."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO not installed")
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
