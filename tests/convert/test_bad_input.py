"""Every bad input to the converters exits with status 2, names the offending keys, and leaves nothing behind."""
import pytest
import torch

from restorenet_jax.convert import flax_to_torch, torch_to_flax
from tests.checkpoint_fixtures import TINY_ARCHS, write_tiny_checkpoint
from restorenet_jax.convert import torch_models as tm


@pytest.fixture(scope="module")
def state_dict():
    return tm.from_arch(TINY_ARCHS["baseline"], seed=0).state_dict()


def _run(tmp_path, capsys, obj=None, raw: bytes | None = None):
    src = tmp_path / "in.pth"
    if raw is not None:
        src.write_bytes(raw)
    else:
        torch.save(obj, src)
    out = tmp_path / "out"
    status = torch_to_flax.main([str(src), str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert not out.exists(), "nothing half-written may be left"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "temporary directory left behind"
    return err


def test_not_a_torch_file(tmp_path, capsys):
    err = _run(tmp_path, capsys, raw=b"this is a text file, not a checkpoint\n")
    assert "not a readable PyTorch checkpoint" in err


def test_truncated_file(tmp_path, capsys, state_dict):
    full = tmp_path / "full.pth"
    torch.save({"params": state_dict}, full)
    err = _run(tmp_path, capsys, raw=full.read_bytes()[: full.stat().st_size // 2])
    assert "not a readable PyTorch checkpoint" in err


def test_unknown_architecture(tmp_path, capsys):
    err = _run(tmp_path, capsys, {"params": {"foo.weight": torch.zeros(3), "bar.bias": torch.zeros(2)}})
    assert "unknown architecture" in err and "foo.weight" in err


def test_missing_key_is_named(tmp_path, capsys, state_dict):
    sd = dict(state_dict)
    del sd["encoders.0.0.conv2.weight"]
    err = _run(tmp_path, capsys, {"params": sd})
    assert "missing keys (1: encoders.0.0.conv2.weight)" in err


def test_unexpected_keys_are_named_with_count(tmp_path, capsys, state_dict):
    sd = dict(state_dict)
    for i in range(7):
        sd[f"extra_head.{i}.weight"] = torch.zeros(1)
    err = _run(tmp_path, capsys, {"params": sd})
    assert "unexpected keys (7: extra_head.0.weight" in err and "... and 2 more" in err


def test_misshaped_key_is_named(tmp_path, capsys, state_dict):
    sd = dict(state_dict)
    sd["ending.bias"] = torch.zeros(5)
    err = _run(tmp_path, capsys, {"params": sd})
    assert "mis-shaped keys (1: ending.bias (5,) != (3,))" in err


def test_missing_params_entry(tmp_path, capsys, state_dict):
    src = tmp_path / "in.pth"
    torch.save({"params": state_dict}, src)
    assert torch_to_flax.main([str(src), str(tmp_path / "out"), "--key", "params_ema"]) == 2
    assert "no 'params_ema' entry" in capsys.readouterr().err


def test_existing_output_is_not_clobbered(tmp_path, capsys, state_dict):
    src = tmp_path / "in.pth"
    torch.save({"params": state_dict}, src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert torch_to_flax.main([str(src), str(out)]) == 2
    assert "exists" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"


def test_flax_to_torch_rejects_non_model_dir_and_unofficial_extra(tmp_path, capsys):
    assert flax_to_torch.main([str(tmp_path), str(tmp_path / "x.pth")]) == 2
    assert "arch.json" in capsys.readouterr().err
    from restorenet_jax.models import model_dir
    from tests.checkpoint_fixtures import random_params

    arch = TINY_ARCHS["restorenet"].replace(extra=TINY_ARCHS["restorenet"].extra.__class__(kind="conv_deconv", width=4))
    model_dir.save_model_dir(tmp_path / "m", random_params(arch), arch)
    assert flax_to_torch.main([str(tmp_path / "m"), str(tmp_path / "x.pth")]) == 2
    assert "no official PyTorch class" in capsys.readouterr().err
    assert not (tmp_path / "x.pth").exists()


def test_tiny_checkpoint_fixture_restores(tmp_path):
    import numpy as np
    from restorenet_jax.inference.restorer import Restorer

    r = Restorer.from_checkpoint(write_tiny_checkpoint(tmp_path / "ck", "restorenet"))
    y = r(np.full((5, 7, 3), 0.5, np.float32))
    assert y.shape == (5, 7, 3) and y.dtype == np.float32 and 0 <= y.min() and y.max() <= 1


def _convert_into(tmp_path, state_dict, out, *flags):
    src = tmp_path / "in.pth"
    torch.save({"params": state_dict}, src)
    return torch_to_flax.main([str(src), str(out), *flags])


def test_overwrite_never_deletes_a_folder_that_is_not_a_model_directory(tmp_path, capsys, state_dict):
    folder = tmp_path / "thesis"
    (folder / "photos").mkdir(parents=True)
    (folder / "thesis.tex").write_text("\\documentclass{article}")
    (folder / "photos" / "a.jpg").write_bytes(b"jpeg")
    assert _convert_into(tmp_path, state_dict, folder, "--overwrite") == 2
    err = capsys.readouterr().err
    assert "is not a model directory" in err and "thesis.tex" in err and "Traceback" not in err
    assert (folder / "thesis.tex").read_text() == "\\documentclass{article}" and (folder / "photos" / "a.jpg").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_output_that_is_a_file_is_refused_cleanly(tmp_path, capsys, state_dict):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    for flags in ((), ("--overwrite",)):
        assert _convert_into(tmp_path, state_dict, target, *flags) == 2
        assert "is not a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_model_directory_is_replaced_only_with_overwrite(tmp_path, capsys, state_dict):
    out = tmp_path / "model"
    assert _convert_into(tmp_path, state_dict, out) == 0
    first = (out / "arch.json").stat().st_mtime_ns
    assert _convert_into(tmp_path, state_dict, out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _convert_into(tmp_path, state_dict, out, "--overwrite") == 0
    assert (out / "arch.json").stat().st_mtime_ns != first
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _convert_into(tmp_path, state_dict, empty) == 0  # an empty folder is filled without --overwrite
