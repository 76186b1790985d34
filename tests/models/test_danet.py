"""DANet generator: flax port == PyTorch reference through the official checkpoint format and the converter CLI."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

torch = pytest.importorskip('torch')

from restorenet_jax.configs.degradations import get_noise_config  # noqa: E402
from restorenet_jax.convert import danet as convert_danet  # noqa: E402
from restorenet_jax.data import degradations  # noqa: E402
from restorenet_jax.data.danet_noise import DanetNoiser  # noqa: E402
from restorenet_jax.models.danet import UNetG, abstract_params  # noqa: E402
from tests.reference import danet_torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WF, DEPTH = 8, 3  # tiny variant for the equality test: pads to multiples of 4


def _reference_model(seed: int = 0) -> danet_torch.UNetG:
    model = danet_torch.UNetG(3, wf=WF, depth=DEPTH).eval()
    danet_torch.randomize_(model, torch.Generator().manual_seed(seed))
    return model


def _save_official(model, path, prefix: str = 'module.') -> None:
    """The official checkpoint layout: {'G': state dict (DataParallel 'module.' keys), 'D': {...}}."""
    state = {prefix + k: v for k, v in model.state_dict().items()}
    torch.save({'G': state, 'D': {}}, path)


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """(torch model, converted dir) via the real CLI entry point."""
    tmp = tmp_path_factory.mktemp('danet')
    model = _reference_model()
    _save_official(model, tmp / 'DANet.pt')
    out = tmp / 'converted'
    assert convert_danet.main([str(tmp / 'DANet.pt'), str(out)]) == 0
    return model, out


def test_converter_writes_arch_and_params_only(converted):
    _, out = converted
    assert sorted(os.listdir(out)) == ['arch.json', 'params']
    arch = json.loads((out / 'arch.json').read_text())
    assert (arch['wf'], arch['depth'], arch['in_chans']) == (WF, DEPTH, 4)
    # Nothing temporary left beside the output directory.
    assert sorted(os.listdir(out.parent)) == ['DANet.pt', 'converted']


def test_flax_matches_torch_on_odd_size(converted):
    model, out = converted
    noiser = DanetNoiser.from_checkpoint(str(out))
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(1, 37, 53, 3)).astype(np.float32)
    z = rng.standard_normal(noiser.padded_shape(x.shape)).astype(np.float32)  # [1, 40, 56, 1]
    assert z.shape == (1, 40, 56, 1)
    with torch.no_grad():
        expected = danet_torch.generate(
            model, torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.from_numpy(z.transpose(0, 3, 1, 2)),
            multiple=2 ** (DEPTH - 1)).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(noiser.generate(x, z, clamp=False))
    assert got.shape == x.shape
    residual_expected, residual_got = expected - x, got - x  # compare the network's part, not the input copy
    rel = np.linalg.norm(residual_got - residual_expected) / np.linalg.norm(residual_expected)
    assert rel < 1e-5, rel
    clamped = np.asarray(noiser.generate(x, z))
    np.testing.assert_allclose(clamped, np.clip(expected, 0, 1), atol=1e-5)


def test_noiser_call_is_seeded_and_shape_preserving(converted):
    _, out = converted
    noiser = DanetNoiser.from_checkpoint(str(out))
    x = np.random.default_rng(1).uniform(size=(2, 13, 18, 3)).astype(np.float32)
    a, b, c = noiser(x, 5), noiser(x, jax.random.key(5)), noiser(x, 6)
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # int seed == the same jax key
    assert np.abs(np.asarray(a) - np.asarray(c)).mean() > 1e-3
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    single = noiser(x[0], 5)
    assert single.shape == x[0].shape


def test_add_noise_danet_kind_uses_the_checkpoint(converted):
    _, out = converted
    cfg = get_noise_config()
    cfg.kind = 'danet'
    cfg.danet_checkpoint = str(out)
    x = np.random.default_rng(2).uniform(size=(12, 20, 3)).astype(np.float32)
    a = degradations.add_noise(x, np.random.default_rng(3), cfg)
    b = degradations.add_noise(x, np.random.default_rng(3), cfg)
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - x).mean() > 1e-3


def test_cli_rejects_a_non_torch_file(tmp_path):
    bad = tmp_path / 'DANet.pt'
    bad.write_text('not a checkpoint')
    proc = subprocess.run([sys.executable, '-m', 'convert.danet', str(bad), str(tmp_path / 'out')],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'not a readable torch checkpoint' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ['DANet.pt']


def test_cli_names_a_missing_key(tmp_path, capsys):
    model = _reference_model()
    state = {k: v for k, v in model.state_dict().items() if k != 'up_path.1.conv_block.block.2.bias'}
    torch.save({'G': state, 'D': {}}, tmp_path / 'DANet.pt')
    assert convert_danet.main([str(tmp_path / 'DANet.pt'), str(tmp_path / 'out')]) == 2
    assert 'up_path.1.conv_block.block.2.bias' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_cli_names_a_missing_generator(tmp_path, capsys):
    torch.save({'D': {}}, tmp_path / 'DANet.pt')
    assert convert_danet.main([str(tmp_path / 'DANet.pt'), str(tmp_path / 'out')]) == 2
    assert "'G'" in capsys.readouterr().err


def test_cli_names_a_wrong_shape(tmp_path, capsys):
    model = _reference_model()
    state = dict(model.state_dict())
    state['last.bias'] = torch.zeros(5)
    torch.save({'G': state, 'D': {}}, tmp_path / 'DANet.pt')
    assert convert_danet.main([str(tmp_path / 'DANet.pt'), str(tmp_path / 'out')]) == 2
    assert 'last.bias' in capsys.readouterr().err


def test_official_size_parameter_count():
    params = abstract_params(UNetG(in_chans=4, wf=32, depth=5, relu_slope=0.2))
    count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    torch_count = sum(p.numel() for p in danet_torch.UNetG(3, wf=32, depth=5).parameters())
    assert count == torch_count
    assert 9.0e6 < count < 9.3e6  # ~9.2 M as published


def test_cli_overwrite_and_atomic_failure(converted, tmp_path, monkeypatch, capsys):
    model, _ = converted
    _save_official(model, tmp_path / 'DANet.pt', prefix='')  # keys without 'module.' are accepted too
    out = tmp_path / 'out'
    assert convert_danet.main([str(tmp_path / 'DANet.pt'), str(out)]) == 0
    assert convert_danet.main([str(tmp_path / 'DANet.pt'), str(out)]) == 2  # refuses to clobber
    assert 'already exists' in capsys.readouterr().err
    assert convert_danet.main([str(tmp_path / 'DANet.pt'), str(out), '--overwrite']) == 0

    def crash(*args, **kwargs):
        raise RuntimeError('disk full')

    # A failure after the params were written leaves neither a partial output nor temp directories.
    monkeypatch.setattr(convert_danet.json, 'dump', crash)
    with pytest.raises(RuntimeError):
        convert_danet.main([str(tmp_path / 'DANet.pt'), str(tmp_path / 'out2')])
    assert sorted(os.listdir(tmp_path)) == ['DANet.pt', 'out']


def test_danet_noise_runs_in_the_training_step_program(converted):
    """Noise kind 'danet' on the device: the generator runs inside the jitted input-making program, one z per
    example drawn from the step key, and equals the generator applied to the same z (the host reference)."""
    import jax
    import jax.numpy as jnp

    from restorenet_jax.configs.data import get_data_config
    from restorenet_jax.data import device_degrade
    from restorenet_jax.training.step import make_device_inputs

    _, out = converted
    cfg = get_data_config()
    cfg.ratio = '0:0:1:0'  # every example noisy (noise kind only)
    cfg.noise.kind = 'danet'
    cfg.noise.danet_checkpoint = str(out)
    clean = np.random.default_rng(4).integers(0, 256, (3, 21, 27, 3), dtype=np.uint8)
    pair_kind = jnp.full((3,), device_degrade.PAIR_KINDS.index('clean'), jnp.int32)
    prepare = jax.jit(make_device_inputs(cfg, seed=7))
    got = prepare({'target': clean, 'degraded': clean, 'pair_kind': pair_kind}, jnp.int32(5))
    # The reference: the same z (the draw of degrade's noise key) through DanetNoiser.generate.
    noiser = DanetNoiser.from_checkpoint(str(out))
    _, k_noise = jax.random.split(device_degrade.step_key(7, 5))
    z = jax.random.normal(jax.random.fold_in(k_noise, 2), noiser.padded_shape(clean.shape))
    want = noiser.generate(clean.astype(np.float32) / 255.0, z)
    np.testing.assert_allclose(np.asarray(got['input']), np.asarray(want), atol=1e-5)
    assert float(jnp.abs(got['input'] - got['target']).mean()) > 1e-3
    # Without the generator the device path says what it needs.
    with pytest.raises(ValueError, match='danet'):
        device_degrade.degrade(clean, clean, device_degrade.step_key(7, 5), cfg, pair_kind)
