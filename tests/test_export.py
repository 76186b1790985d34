"""Exported models (ONNX, OpenVINO IR, StableHLO) equal the JAX model; the export command's outputs and errors."""
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from restorenet_jax.apps import export as export_cli
from restorenet_jax.deploy import onnx_graph, openvino_ir, stablehlo
from restorenet_jax.models.arch import BaselineArch, ExtraArch, ModelArch
from restorenet_jax.models.restorenet import build_model
from tests.checkpoint_fixtures import random_params

ort = pytest.importorskip("onnxruntime")
ov = pytest.importorskip("openvino")

# Two-level networks (pad multiple 4): every operator of the four-level ones, at a fraction of the compile time.
_B1 = BaselineArch(width=4, enc_blk_nums=(1, 1), middle_blk_num=1, dec_blk_nums=(1, 1), dw_expand=2, ffn_expand=2)
_B2 = BaselineArch(width=4, enc_blk_nums=(1, 2), middle_blk_num=1, dec_blk_nums=(2, 1), dw_expand=1, ffn_expand=2)
_EXTRA = ExtraArch(width=4, enc_blk_nums=(1, 1), middle_blk_num=1, dec_blk_nums=(1, 1))
# TLC windows come from train_size: 16 px training crops give 24-px windows at full resolution, so the TLC case
# (45x70, padded to 48x72) pools locally at every level rather than falling back to the global mean.
MICRO = {
    "baseline": ModelArch("baseline", backbone=_B1, train_size=(16, 16)),
    "restorenet": ModelArch("restorenet", deblur=_B1, denoise=_B2, extra=_EXTRA, train_size=(16, 16)),
    "serial": ModelArch("serial", deblur=_B1, denoise=_B2, train_size=(16, 16)),
}
TOL = 1e-4


def _image(h, w, seed=0):
    return np.random.default_rng(seed).random((1, h, w, 3), dtype=np.float32)


def _jax(arch, params, x):
    model = build_model(arch)
    return np.asarray(jax.jit(lambda p, v: model.apply({"params": p}, v))(params, x))


def _ort(proto, x):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {onnx_graph.INPUT: x.transpose(0, 3, 1, 2)})[0].transpose(0, 2, 3, 1)


def _openvino(xml, x):
    compiled = ov.Core().compile_model(str(xml), "CPU", openvino_ir.precision_config("float32"))
    return np.asarray(compiled({0: x.transpose(0, 3, 1, 2)})[0]).transpose(0, 2, 3, 1)


# Every model kind plain; TLC (the same local-pooling graph in every block) on RestoreNet alone, which holds both
# backbones and the extra network: one compile-heavy case instead of three.
@pytest.mark.parametrize("kind,tlc", [(kind, False) for kind in sorted(MICRO)] + [("restorenet", True)],
                         ids=[f"{kind}-plain" for kind in sorted(MICRO)] + ["restorenet-tlc"])
def test_exports_equal_jax(kind, tlc, tmp_path):
    arch = MICRO[kind].replace(tlc=tlc)
    params = random_params(arch, seed=1, scale=0.1)
    x = _image(*((45, 70) if tlc else (37, 53)))
    want = _jax(arch, params, x)
    assert np.abs(want - x).max() > 0.05  # the model really changes the image

    proto = onnx_graph.build_onnx(arch, params)  # dynamic H/W, TLC included
    np.testing.assert_allclose(_ort(proto, x), want, atol=TOL, rtol=0)
    xml = tmp_path / "model.xml"
    openvino_ir.save_openvino(proto, xml)
    np.testing.assert_allclose(_openvino(xml, x), want, atol=TOL, rtol=0)
    blob = stablehlo.export_stablehlo(arch, params, size=x.shape[1:3] if tlc else None)
    got = np.asarray(jax.export.deserialize(bytearray(blob)).call(x))
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    if not tlc:  # one dynamic graph and one symbolic program serve another size (and batch) too
        y = _image(20, 9, seed=2).repeat(2, axis=0)
        want = _jax(arch, params, y)
        np.testing.assert_allclose(_ort(proto, y), want, atol=TOL, rtol=0)
        np.testing.assert_allclose(np.asarray(jax.export.deserialize(bytearray(blob)).call(y)), want, atol=TOL,
                                   rtol=0)


def test_compare_graph_stacks_every_method():
    arch = MICRO["restorenet"]
    params = random_params(arch, seed=3, scale=0.1)
    x = _image(37, 53)
    model = build_model(arch)
    out = jax.jit(lambda p, v: model.apply({"params": p}, v, method="comparison"))(params, x)
    want = np.concatenate([np.asarray(out[m]) for m in onnx_graph.METHODS["restorenet"]], axis=-1)
    got = _ort(onnx_graph.build_onnx(arch, params, compare=True), x)
    assert got.shape == (1, 37, 53, 12)
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_stablehlo_needs_a_size_for_tlc():
    arch = MICRO["baseline"].replace(tlc=True)
    with pytest.raises(stablehlo.ExportError, match="--size"):
        stablehlo.export_stablehlo(arch, random_params(arch))


@pytest.fixture(scope="module")
def micro_checkpoint(tmp_path_factory):
    from restorenet_jax.models import model_dir

    arch = MICRO["baseline"]
    params = random_params(arch, seed=4, scale=0.1)
    path = model_dir.save_model_dir(tmp_path_factory.mktemp("micro") / "model", params, arch)
    return path, arch, params


def test_cli_writes_each_format(micro_checkpoint, tmp_path):
    path, arch, params = micro_checkpoint
    x = _image(37, 53, seed=5)
    want = _jax(arch, params, x)
    assert export_cli.main(["--checkpoint", str(path), "--format", "onnx", "--output", str(tmp_path / "m")]) == 0
    record = json.loads((tmp_path / "m.onnx.json").read_text())
    assert record["kind"] == "baseline" and record["size"] == "dynamic" and record["layout"] == "NCHW"
    import onnx

    np.testing.assert_allclose(_ort(onnx.load(str(tmp_path / "m.onnx")), x), want, atol=TOL, rtol=0)

    assert export_cli.main(["--checkpoint", str(path), "--format", "openvino", "--output",
                            str(tmp_path / "ir" / "m.xml")]) == 0
    assert (tmp_path / "ir" / "m.bin").is_file()
    np.testing.assert_allclose(_openvino(tmp_path / "ir" / "m.xml", x), want, atol=TOL, rtol=0)

    # The StableHLO artifact restores in a process that imports nothing of this package (no model code).
    assert export_cli.main(["--checkpoint", str(path), "--format", "stablehlo", "--output",
                            str(tmp_path / "m.stablehlo"), "--size", "37x53", "--batch", "1"]) == 0
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, jax, numpy as np; e = jax.export.deserialize(bytearray(open(sys.argv[1], 'rb').read()));"
            "np.save(sys.argv[3], np.asarray(e.call(np.load(sys.argv[2])))); "
            "assert not any(m.startswith('restorenet_jax') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.stablehlo"), str(tmp_path / "x.npy"),
                    str(tmp_path / "y.npy")], check=True, cwd=tmp_path, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, atol=TOL, rtol=0)


def _fails(capsys, argv, *needles):
    with pytest.raises(SystemExit) as e:
        export_cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_cli_errors_exit_2(micro_checkpoint, tmp_path, capsys):
    path, _, _ = micro_checkpoint
    out = str(tmp_path / "m.onnx")
    _fails(capsys, ["--checkpoint", str(tmp_path / "nope"), "--format", "onnx", "--output", out],
           "cannot export", "no such checkpoint")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "arch.json").write_text("{not json")
    (broken / "params").mkdir()
    _fails(capsys, ["--checkpoint", str(broken), "--format", "onnx", "--output", out], "cannot export",
           "not a valid architecture file")
    _fails(capsys, ["--checkpoint", str(path), "--format", "tflite", "--output", out], "invalid choice", "tflite")
    _fails(capsys, ["--checkpoint", str(path), "--format", "stablehlo", "--tlc", "--output", out], "--size")
    _fails(capsys, ["--checkpoint", str(path), "--format", "onnx", "--size", "0x5", "--output", out], "HxW")
    (tmp_path / "taken.onnx").write_bytes(b"x")
    _fails(capsys, ["--checkpoint", str(path), "--format", "onnx", "--output", str(tmp_path / "taken.onnx")],
           "exists", "--overwrite")
    assert (tmp_path / "taken.onnx").read_bytes() == b"x"


def test_cli_exports_a_converted_restorenet(tmp_path_factory, tmp_path):
    """A four-level RestoreNet model directory as the other commands use it (tests.tiny_model), via the command."""
    from tests.tiny_model import tiny_checkpoint, tiny_restorer

    import onnx

    path, restorer = tiny_checkpoint(tmp_path_factory), tiny_restorer(tmp_path_factory)
    assert export_cli.main(["--checkpoint", str(path), "--format", "onnx", "--output", str(tmp_path / "r.onnx")]) == 0
    model = onnx.load(str(tmp_path / "r.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["kind"] == "restorenet" and meta["tlc"] == "False"
    x = _image(37, 53, seed=6)
    np.testing.assert_allclose(_ort(model, x)[0], restorer(x[0], clip=False), atol=TOL, rtol=0)
