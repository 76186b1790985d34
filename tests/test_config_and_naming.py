"""The shared config-file loader (file.py:variant, one-line errors) and the export naming rule (no clobbering)."""
import os
from pathlib import Path, PurePath

import pytest

from restorenet_jax.apps import restore_layout
from restorenet_jax.configs.files import ConfigFileError, load_config_file
from restorenet_jax.deploy import naming

ROOT = Path(__file__).resolve().parents[1]


def test_variants_load_and_unknown_ones_fail_in_one_line():
    assert load_config_file(str(ROOT / "configs" / "bsd64.py") + ":demo_cctv").data.noise.kind == "cctv"
    with pytest.raises(ConfigFileError) as e:
        load_config_file(str(ROOT / "configs" / "bsd64.py") + ":demoo")
    assert "demoo" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigFileError, match="not found"):
        load_config_file(str(ROOT / "configs" / "missing.py"))


def test_every_format_keeps_its_own_files():
    written = [p for fmt in naming.SUFFIX for p in naming.files_written(naming.artifact_path("d/demo", fmt), fmt)]
    assert len(written) == len(set(written)) == 7
    with pytest.raises(naming.OutputNameError):
        naming.artifact_path("d/demo.png", "onnx")
    with pytest.raises(naming.OutputNameError):
        naming.artifact_path("d/demo.onnx", "openvino")
    assert naming.artifact_path("d/demo.xml", "openvino") == Path("d/demo.xml")


def test_nested_folders_mirror_and_never_collide(tmp_path):
    for sub in ("a", "b", "a/c"):
        (tmp_path / "in" / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / sub / "chelsea.png").write_bytes(b"x")
    (tmp_path / "in" / ".hidden.png").write_bytes(b"x")
    found, missing = restore_layout.collect_inputs([str(tmp_path / "in")])
    rels = [rel for _, rel in found]
    assert not missing and rels == [PurePath("a/c/chelsea.png"), PurePath("a/chelsea.png"), PurePath("b/chelsea.png")]
    taken: set = set()
    outs = [restore_layout.output_path(rel, tmp_path / "out", ".png", {p.resolve() for p, _ in found}, taken)
            for _, rel in found]
    assert len(set(outs)) == 3 and outs[0] == tmp_path / "out" / "a" / "c" / "chelsea.png"
    glob_found, _ = restore_layout.collect_inputs([os.path.join(str(tmp_path / "in"), "**", "*.png")])
    assert sorted(rel for _, rel in glob_found) == sorted(rels)
