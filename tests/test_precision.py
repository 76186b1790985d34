"""The precision policy: `auto` from the CPU's flags (patched) and the accelerator, --bf16 as an alias, and the
resolved precision printed by restore and evaluate and answered by the service's /healthz."""
import argparse
import json

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.apps import restore
from restorenet_jax.inference import engines
from restorenet_jax.inference import precision as prec
from tests.tiny_model import tiny_checkpoint


@pytest.mark.parametrize("flags, expected", [
    ({"avx512f", "avx512_bf16", "avx512_vnni"}, ("bf16", "auto: CPU has AVX512_BF16")),
    ({"avx512f", "amx_bf16", "amx_tile", "avx512_bf16"}, ("bf16", "auto: CPU has AMX")),
    ({"avx2", "avx512f", "avx512_vnni"}, ("fp32", "auto: CPU has no native bf16")),
    (set(), ("fp32", "auto: CPU has no native bf16")),
])
def test_auto_follows_the_cpu_flags_under_openvino(flags, expected):
    p = prec.resolve_precision("auto", "openvino", flags=flags)
    assert (p.name, p.reason) == expected
    assert p.describe("openvino") == f"engine openvino, precision {expected[0]} ({expected[1]})"


def test_auto_is_bf16_on_accelerators_and_fp32_where_the_cpu_engine_has_no_bf16():
    assert prec.resolve_precision("auto", "jax", backend="gpu").name == "bf16"
    assert prec.resolve_precision("auto", "jax", backend="tpu").name == "bf16"
    bf16_cpu = {"avx512_bf16"}
    assert prec.resolve_precision("auto", "jax", backend="cpu", flags=bf16_cpu).name == "fp32"
    assert prec.resolve_precision("auto", "onnxruntime", flags=bf16_cpu).name == "fp32"
    # An explicit choice is kept as asked, whatever the hardware.
    assert prec.resolve_precision("fp32", "openvino", flags=bf16_cpu) == prec.Precision("fp32", "asked")
    assert prec.resolve_precision("bfloat16", "jax", backend="cpu").name == "bf16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16 amx_int8\n")
    assert prec.cpu_flags(str(tmp_path / "cpuinfo")) == {"fpu", "sse", "avx512_bf16", "amx_int8"}
    assert prec.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_argument_default_from_environment_and_bf16_alias(monkeypatch):
    monkeypatch.setenv(prec.ENV, "bf16")
    p = argparse.ArgumentParser()
    prec.add_precision_argument(p)
    assert p.parse_args([]).precision == "bf16"
    monkeypatch.delenv(prec.ENV)
    p = argparse.ArgumentParser()
    prec.add_precision_argument(p)
    assert p.parse_args([]).precision == "auto"
    assert p.parse_args(["--bf16"]).precision == "bf16"
    assert p.parse_args(["--precision", "int8"]).precision == "int8"
    with pytest.raises(SystemExit):
        p.parse_args(["--precision", "fp16"])


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder / "a.png"


def test_restore_prints_the_resolved_precision(tmp_path_factory, tmp_path, frame, monkeypatch, capsys):
    ckpt = tiny_checkpoint(tmp_path_factory)
    monkeypatch.setattr(prec, "cpu_flags", lambda path="/proc/cpuinfo": frozenset({"avx512_bf16"}))
    assert restore.main(["--checkpoint", str(ckpt), str(frame), "-o", str(tmp_path / "a"), "-q",
                         "--engine", "openvino", "--precision", "auto"]) == 0
    assert "engine openvino, precision bf16 (auto: CPU has AVX512_BF16)" in capsys.readouterr().err
    monkeypatch.setattr(prec, "cpu_flags", lambda path="/proc/cpuinfo": frozenset({"avx2"}))
    assert restore.main(["--checkpoint", str(ckpt), str(frame), "-o", str(tmp_path / "b"), "-q",
                         "--engine", "openvino", "--precision", "auto"]) == 0
    assert "engine openvino, precision fp32 (auto: CPU has no native bf16)" in capsys.readouterr().err
    # fp32 through OpenVINO is today's float32 output (the 8-bit PNGs agree to one level).
    assert restore.main(["--checkpoint", str(ckpt), str(frame), "-o", str(tmp_path / "c"), "-q",
                         "--engine", "jax", "--precision", "fp32"]) == 0
    assert "engine jax, precision fp32 (asked)" in capsys.readouterr().err
    b, c = (np.asarray(Image.open(tmp_path / d / "a.png"), np.int16) for d in "bc")
    assert np.abs(b - c).max() <= 1


def test_engine_carries_precision_and_onnxruntime_refuses_bf16(tmp_path_factory):
    ckpt = tiny_checkpoint(tmp_path_factory)
    engine = engines.load_engine(ckpt, "onnxruntime", precision="fp32")
    assert engine.precision.record() == {"precision": "fp32", "precision_reason": "asked"}
    with pytest.raises(engines.EngineUnavailable, match="float32 only"):
        engines.load_engine(ckpt, "onnxruntime", precision="bf16")
    with pytest.raises(engines.EngineUnavailable, match="int8 runs on OpenVINO only"):
        engines.load_engine(ckpt, "jax", precision="int8")


def test_service_info_reports_the_precision(tmp_path_factory):
    from fastapi.testclient import TestClient

    from restorenet_jax.apps.serve import create_app

    engine = engines.load_engine(tiny_checkpoint(tmp_path_factory), "openvino", precision="bf16")
    info = TestClient(create_app(engine)).get("/healthz").json()
    assert (info["engine"], info["precision"], info["precision_reason"]) == ("openvino", "bf16", "asked")


def test_evaluate_report_records_the_precision(tmp_path_factory, tmp_path, capsys):
    from restorenet_jax.apps import evaluate
    from tests.data.conftest import bsd_tree, prepare

    root = tmp_path_factory.mktemp("evalprec")
    bsd_tree(root / "BSD_B", [1, 2, 3], h=24, w=32)
    prepare("bsd_b", root / "BSD_B", root / "tfds")
    out = tmp_path / "out"
    assert evaluate.main(["--checkpoint", str(tiny_checkpoint(tmp_path_factory)), "--dataset", "bsd_b", "--split", "train",
                          "--kinds", "blur", "--limit", "1", "--data-dir", str(root / "tfds"), "--out", str(out),
                          "--engine", "openvino", "--precision", "fp32", "-q"]) == 0
    assert "engine openvino, precision fp32 (asked)" in capsys.readouterr().err
    [report] = out.glob("*.json")
    record = json.loads(report.read_text())
    assert (record["engine"], record["precision"]) == ("openvino", "fp32")
