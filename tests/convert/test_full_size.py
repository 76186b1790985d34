"""Full-size official configurations (GoPro-w64 ~112 M, SIDD-w64 ~194 M params) convert and run on the CPU."""
import numpy as np
import pytest
import torch

from restorenet_jax.convert import torch_to_flax
from restorenet_jax.inference.restorer import Restorer
from restorenet_jax.models.arch import GOPRO_W64, SIDD_W64, ModelArch
from restorenet_jax.convert import torch_models as tm


@pytest.mark.slow
@pytest.mark.parametrize("name,backbone,expected_m", [("gopro64", GOPRO_W64, 112.0), ("sidd64", SIDD_W64, 194.4)])
def test_full_size_checkpoint_converts_and_runs(tmp_path, name, backbone, expected_m):
    torch.manual_seed(0)
    arch = ModelArch("baseline", backbone=backbone)
    net = tm.from_arch(arch, seed=0)
    n_params = sum(p.numel() for p in net.parameters())
    assert abs(n_params / 1e6 - expected_m) < 0.5
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
