"""Official-format checkpoints of randomised PyTorch references -> converter CLI -> Restorer: outputs agree."""
import numpy as np
import pytest
import torch

from restorenet_jax.convert import flax_to_torch, torch_to_flax
from restorenet_jax.convert.key_map import flatten
from restorenet_jax.models import model_dir
from restorenet_jax.inference.restorer import Restorer
from tests.checkpoint_fixtures import TINY_ARCHS
from restorenet_jax.convert import torch_models as tm


def rel_err(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _image(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def _convert(tmp_path, obj, name, *flags):
    src = tmp_path / f"{name}.pth"
    torch.save(obj, src)
    out = tmp_path / name
    assert torch_to_flax.main([str(src), str(out), *flags]) == 0
    return out


@pytest.mark.parametrize("kind", ["baseline", "restorenet", "serial"])
def test_converted_model_matches_torch_on_odd_size(tmp_path, kind):
    arch = TINY_ARCHS[kind]
    net = tm.from_arch(arch, seed=3)
    out = _convert(tmp_path, {"params": net.state_dict()}, kind)
    restorer = Restorer.from_checkpoint(out)
    assert restorer.arch == arch
    x = _image(37, 53)
    assert rel_err(restorer(x, clip=False), tm.run(net, x)) < 1e-5


@pytest.mark.parametrize("wrap", ["params", "params_ema", "bare", "module_prefix"])
def test_every_official_container_format_converts(tmp_path, wrap):
    arch = TINY_ARCHS["baseline"]
    net = tm.from_arch(arch, seed=4)
    sd = net.state_dict()
    obj = {"params": {k: v * 0 for k, v in sd.items()}, "params_ema": sd} if wrap == "params_ema" else \
        {"params": sd} if wrap == "params" else sd if wrap == "bare" else \
        {"params": {f"module.{k}": v for k, v in sd.items()}}
    flags = ["--key", "params_ema"] if wrap == "params_ema" else []
    out = _convert(tmp_path, obj, wrap, *flags)
    x = _image(19, 23, seed=1)
    assert rel_err(Restorer.from_checkpoint(out)(x, clip=False), tm.run(net, x)) < 1e-5


@pytest.mark.parametrize("kind", ["baseline", "restorenet"])
def test_tlc_matches_official_local_variant_on_large_input(tmp_path, kind):
    # A 64-pixel training size (windows of 96) keeps the "large" input small: 131x163 is beyond both windows.
    arch = TINY_ARCHS[kind].replace(tlc=True, train_size=(64, 64))
    local_net = tm.from_arch(arch, seed=5)
    out = _convert(tmp_path, {"params": local_net.state_dict()}, kind, "--tlc", "--train-size", "64")
    x = _image(131, 163, seed=2)
    with_tlc = Restorer.from_checkpoint(out)
    assert with_tlc.arch.tlc
    y_tlc = with_tlc(x, clip=False)
    assert rel_err(y_tlc, tm.run(local_net, x)) < 1e-5
    # TLC really changes the result at this size, and switching it off gives the plain model's output.
    plain_net = tm.from_arch(arch.replace(tlc=False), seed=5)
    y_plain = Restorer.from_checkpoint(out, tlc=False)(x, clip=False)
    assert rel_err(y_plain, tm.run(plain_net, x)) < 1e-5
    assert rel_err(y_tlc, y_plain) > 1e-3


def test_tlc_equals_plain_model_at_training_size(tmp_path):
    arch = TINY_ARCHS["baseline"]
    out = _convert(tmp_path, {"params": tm.from_arch(arch, seed=6).state_dict()}, "b", "--tlc")
    x = _image(256, 256, seed=3)
    np.testing.assert_allclose(Restorer.from_checkpoint(out)(x, clip=False),
                               Restorer.from_checkpoint(out, tlc=False)(x, clip=False), rtol=0, atol=2e-6)


@pytest.mark.parametrize("kind", ["baseline", "restorenet", "serial"])
def test_round_trip_flax_torch_flax_is_exact(tmp_path, kind):
    arch = TINY_ARCHS[kind]
    net = tm.from_arch(arch, seed=7)
    first = _convert(tmp_path, {"params": net.state_dict()}, "first")
    pth = tmp_path / "back.pth"
    assert flax_to_torch.main([str(first), str(pth)]) == 0
    # The exported file loads into the reference (official key names) with strict matching.
    fresh = tm.from_arch(arch, seed=99)
    fresh.load_state_dict(torch.load(pth, weights_only=True)["params"], strict=True)
    for k, v in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    second = tmp_path / "second"
    assert torch_to_flax.main([str(pth), str(second)]) == 0
    (_, p1), (_, p2) = model_dir.load_model_dir(first), model_dir.load_model_dir(second)
    f1, f2 = flatten(p1), flatten(p2)
    assert f1.keys() == f2.keys()
    for k in f1:
        assert np.array_equal(f1[k], f2[k]), k


def test_converter_prints_architecture_summary(tmp_path, capsys):
    _convert(tmp_path, {"params": tm.from_arch(TINY_ARCHS["restorenet"]).state_dict()}, "r")
    text = capsys.readouterr().out
    assert "model: restorenet" in text and "extra: width 4, enc [1, 1, 1, 2]" in text
    n = sum(p.numel() for p in tm.from_arch(TINY_ARCHS["restorenet"]).parameters())
    assert f"parameters: {n:,}" in text
