"""int8: an OpenVINO model quantised with NNCF from a tiny checkpoint restores close to fp32; calibration from a
folder and from the checkpoint's training data; a missing calibration source or int8 model exits 2."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.apps import export, restore
from restorenet_jax.deploy import quantize
from tests.tiny_model import gentle_checkpoint

pytest.importorskip("nncf")

# The tiny random model's outputs against its fp32 outputs (8-bit PNGs). Real models lose far less (README).
MIN_PSNR_DB = 30.0


def _png(path, seed, h=24, w=36):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    img = 0.3 + 0.2 * np.sin(6 * xx[..., None] + 4 * yy[..., None] + rng.uniform(0, 3, 3))
    img = np.clip(img + 0.03 * rng.standard_normal((h, w, 3)), 0, 1)
    Image.fromarray(np.round(img * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    ckpt = root / "model"
    shutil.copytree(gentle_checkpoint(tmp_path_factory), ckpt)  # the int8 cache is written beside it
    (root / "calib").mkdir()
    for i in range(3):
        _png(root / "calib" / f"c{i}.png", i)
    (root / "calib" / "notes.txt").write_text("not an image")
    (root / "frames").mkdir()
    _png(root / "frames" / "f.png", 10)
    return root, ckpt


def test_int8_export_restores_close_to_fp32(setup, capsys):
    root, ckpt = setup
    with pytest.raises(SystemExit) as e:  # no int8 model exported yet: exit 2 naming the command
        restore.main(["--checkpoint", str(ckpt), str(root / "frames"), "-o", str(root / "x"), "-q",
                      "--precision", "int8"])
    assert e.value.code == 2 and "--int8" in capsys.readouterr().err
    assert export.main(["--checkpoint", str(ckpt), "--format", "openvino", "--int8", "--calibration",
                        str(root / "calib"), "--calibration-crops", "6", "--crop-size", "16",
                        "-o", str(root / "deploy" / "tiny.xml")]) == 0
    assert (root / "deploy" / "tiny.xml").is_file() and (root / "deploy" / "tiny.bin").is_file()
    record = json.loads((quantize.cache_dir(ckpt) / quantize.RECORD).read_text())
    assert record["calibration_crops"] == 6 and record["excluded_layers"] > 0
    assert "residual" in record["excluded_groups"]
    # Convolutions read int8 inputs; no addition does (the residual stream every block adds to stays unquantised).
    import openvino as ov

    fed = set()
    for op in ov.Core().read_model(str(quantize.cache_dir(ckpt) / "model.xml")).get_ops():
        if op.get_type_name() == "FakeQuantize":
            fed |= {t.get_node().get_type_name() for out in op.outputs() for t in out.get_target_inputs()}
    assert "Convolution" in fed and "Add" not in fed, fed
    for precision in ("fp32", "int8"):
        assert restore.main(["--checkpoint", str(ckpt), str(root / "frames"), "-o", str(root / precision), "-q",
                             "--engine", "openvino", "--precision", precision]) == 0
    assert "engine openvino, precision int8 (asked)" in capsys.readouterr().err
    fp32, int8 = (np.asarray(Image.open(root / p / "f.png"), np.float64) / 255 for p in ("fp32", "int8"))
    mse = np.mean((fp32 - int8) ** 2)
    assert mse > 0  # it is a different (quantised) model
    assert 10 * np.log10(1 / mse) >= MIN_PSNR_DB


def test_calibration_from_the_checkpoints_training_data(tmp_path_factory):
    from restorenet_jax.configs.data import get_data_config
    from tests.data.conftest import bsd_tree, prepare

    root = tmp_path_factory.mktemp("int8data")
    bsd_tree(root / "BSD_B", [1, 2], h=24, w=32)
    prepare("bsd_b", root / "BSD_B", root / "tfds")
    data = get_data_config()
    data.datasets, data.data_dir = "bsd_b", str(root / "tfds")
    workdir = root / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({"data": data.to_dict()}))
    crops = quantize.checkpoint_crops(workdir, count=5, size=16, seed=0)
    assert len(crops) == 5 and all(c.shape == (16, 16, 3) and c.dtype == np.float32 for c in crops)
    assert 0 <= min(c.min() for c in crops) and max(c.max() for c in crops) <= 1
    # The engines benchmark calibrates a trained model as the export does: on its training data, not on photos.
    from restorenet_jax.bench import engines

    bench_crops = engines.calibration_crops(None, 5, 16, str(workdir))
    assert all(np.array_equal(a, b) for a, b in zip(bench_crops, crops))
    photos = engines.calibration_crops(None, 5, 16, str(root))  # records no training data: the photos
    assert len(photos) == 5 and not np.array_equal(photos[0], crops[0])


def test_missing_calibration_source_exits_2(setup, tmp_path, capsys):
    root, ckpt = setup
    for extra, message in (([], "records no training data"),
                           (["--calibration", str(tmp_path / "nowhere")], "no such folder"),
                           (["--calibration", str(root / "frames" / "f.png")], "no such folder")):
        with pytest.raises(SystemExit) as e:
            export.main(["--checkpoint", str(ckpt), "--format", "openvino", "--int8", *extra,
                         "-o", str(tmp_path / "m.xml")])
        assert e.value.code == 2 and message in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as e:
        export.main(["--checkpoint", str(ckpt), "--format", "openvino", "--int8", "--calibration", str(empty),
                     "-o", str(tmp_path / "m.xml")])
    assert e.value.code == 2 and "no readable image" in capsys.readouterr().err


def test_unknown_excluded_group_is_refused():
    with pytest.raises(ValueError, match="unknown excluded group"):
        quantize.quantize_model(None, {}, [np.zeros((8, 8, 3), np.float32)], exclude=("image", "norms"))
