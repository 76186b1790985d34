"""Full-size official configurations (GoPro-w64 ~112 M, SIDD-w64 ~194 M params) convert and run on the CPU.

One full-size conversion runs end to end (GoPro-w64, the cheaper of the two: the converter treats every depth
alike, and the tiny official-format checkpoints cover both key layouts); SIDD-w64's parameter shapes are compared
with the PyTorch model's without converting or running 194 M parameters.
"""
import jax
import numpy as np
import pytest
import torch

from restorenet_jax.convert import torch_to_flax
from restorenet_jax.inference.restorer import Restorer
from restorenet_jax.models import restorenet
from restorenet_jax.models.arch import GOPRO_W64, SIDD_W64, ModelArch
from restorenet_jax.convert import torch_models as tm


@pytest.mark.slow
def test_full_size_checkpoint_converts_and_runs(tmp_path):
    torch.manual_seed(0)
    name, backbone = "gopro64", GOPRO_W64
    arch = ModelArch("baseline", backbone=backbone)
    net = tm.from_arch(arch, seed=0)
    n_params = sum(p.numel() for p in net.parameters())
    assert abs(n_params / 1e6 - 112.0) < 0.5
    src = tmp_path / f"{name}.pth"
    torch.save({"params": net.state_dict()}, src)
    out = tmp_path / name
    assert torch_to_flax.main([str(src), str(out)]) == 0
    src.unlink()
    restorer = Restorer.from_checkpoint(out)
    assert restorer.arch.backbone == backbone
    x = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    y = restorer(x, clip=False)
    y_ref = tm.run(net, x)
    assert np.linalg.norm(y - y_ref) / np.linalg.norm(y_ref) < 1e-5


def test_sidd64_parameter_shapes_match_the_official_model():
    arch = ModelArch("baseline", backbone=SIDD_W64)
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        net = tm.Baseline(**tm._baseline_kwargs(SIDD_W64))
    torch_shapes = sorted(tuple(p.shape) for p in net.state_dict().values())
    assert abs(sum(np.prod(s) for s in torch_shapes) / 1e6 - 194.4) < 0.5
    leaves = jax.tree_util.tree_leaves(restorenet.abstract_params(arch))
    # Same multiset of sizes (flax kernels are laid out HWIO, torch's OIHW: compare element counts per tensor).
    assert sorted(int(np.prod(x.shape)) for x in leaves) == sorted(int(np.prod(s)) for s in torch_shapes)
