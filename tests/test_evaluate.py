"""The evaluate CLI on miniature RealBlur-J and BSD-B trees with the tiny RestoreNet checkpoint.

Every number of the table is recomputed here independently: the input row from the raw degraded images, the
RestoreNet row through `Restorer`, the backbone rows and the serial row through modules built with `build_model`
from the same parameter subtrees, all scored with `restorenet_jax.metrics`.
"""
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from restorenet_jax.apps import evaluate
from restorenet_jax.configs.files import ConfigFileError
from restorenet_jax.evaluation import scoring
from restorenet_jax.evaluation import metrics
from restorenet_jax.models import model_dir
from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.restorenet import build_model
from tests.data.conftest import ROOT, bsd_tree, prepare, write_png
from tests.tiny_model import tiny_checkpoint, tiny_restorer

H, W = 24, 32  # one image size everywhere: one compilation per method
KINDS = ["blur_noise", "blur", "noise", "gt"]
DATASETS = ["realblur_j", "bsd_b"]
METHODS = ["input", "deblur", "denoise", "serial", "restorenet"]


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth colour image (uint8 [H, W, 3]) and a box-blurred copy of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None]
    sharp = 0.5 + 0.4 * np.sin(2 * np.pi * (xx[..., None] * rng.uniform(1, 3, 3) + yy[..., None] * rng.uniform(1, 3, 3)))
    sharp = np.clip(sharp + 0.05 * rng.standard_normal(sharp.shape), 0, 1)
    blurred = sum(np.roll(sharp, s, axis=1) for s in range(-2, 3)) / 5
    return (np.round(sharp * 255).astype(np.uint8), np.round(blurred * 255).astype(np.uint8))


def _realblur_tree(root):
    base = "RealBlur-J_ECC_IMCORR_centroid_itensity_ref"
    ident = 0
    for split, n in (("train", 1), ("test", 2)):
        lines = []
        for _ in range(n):
            gt_rel, blur_rel = f"{base}/scene{ident:03d}/gt/gt_1.png", f"{base}/scene{ident:03d}/blur/blur_1.png"
            sharp, blurred = _scene(ident)
            write_png(root / gt_rel, sharp)
            write_png(root / blur_rel, blurred)
            lines.append(f"{gt_rel} {blur_rel}")
            ident += 1
        (root / f"RealBlur_J_{split}_list.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data_dir = root / "tfds"
    _realblur_tree(root / "RealBlur")
    prepare("realblur_j", root / "RealBlur", data_dir)
    bsd_tree(root / "BSD_B", [1, 2, 3], h=H, w=W)
    prepare("bsd_b", root / "BSD_B", data_dir)
    return {"root": root, "data_dir": data_dir, "ckpt": tiny_checkpoint(tmp_path_factory)}


@pytest.fixture(scope="module")
def report(env):
    out = env["root"] / "out"
    rc = evaluate.main(["--checkpoint", str(env["ckpt"]), "--dataset", "realblur_j,bsd_b@train", "--limit", "2",
                        "--data-dir", str(env["data_dir"]), "--out", str(out), "--quiet"])
    assert rc == 0
    stem = "eval_realblur_j-bsd_b@train_test"
    return json.loads((out / f"{stem}.json").read_text()), (out / f"{stem}.md").read_text()


def _examples(env):
    from restorenet_jax.configs.data import get_data_config
    from restorenet_jax.data import pipeline

    cfg = get_data_config()
    cfg.data_dir, cfg.eval_datasets = str(env["data_dir"]), "realblur_j,bsd_b@train"
    return pipeline.make_eval_examples(cfg, split="test", seed=0, limit=2)


def _module_predict(arch: ModelArch, params):
    model = build_model(arch)
    fwd = jax.jit(lambda p, x: model.apply({"params": p}, x))
    return lambda x: np.clip(np.asarray(fwd(params, x[None])[0]), 0.0, 1.0)


def test_table_has_every_row(report):
    result, md = report
    assert result["methods"] == METHODS and result["kinds"] == KINDS
    assert list(result["groups"]) == DATASETS
    for dataset in DATASETS:
        groups = result["groups"][dataset]
        assert list(groups) == [*KINDS, scoring.DEGRADED]
        for kind in KINDS:
            assert set(groups[kind]) == set(METHODS)
            assert all(groups[kind][m]["count"] == 2 for m in METHODS)
        assert groups[scoring.DEGRADED]["input"]["count"] == 6  # 2 images x 3 degraded kinds
        section = md.split(f"### {dataset} ")[1].split("###")[0]
        assert all(f"{k} PSNR / SSIM" in section for k in [*KINDS, scoring.DEGRADED])
        for m in METHODS:
            row = [r for r in section.splitlines() if r.startswith(f"| {scoring.METHOD_LABELS[m]} |")]
            assert len(row) == 1 and row[0].count("/") == len(KINDS) + 1
    assert len(result["images"]) == len(DATASETS) * 2 * len(KINDS)
    assert all(i["size"] == [H, W] for i in result["images"])  # full resolution by default
    # The gt kind feeds the target itself: capped PSNR, SSIM 1.
    assert result["groups"]["bsd_b"]["gt"]["input"]["psnr"] == scoring.PSNR_CAP
    assert result["groups"]["bsd_b"]["gt"]["input"]["ssim"] == pytest.approx(1.0)


def test_numbers_equal_independent_metrics(env, report, tmp_path_factory):
    result, _ = report
    arch, params = model_dir.load_model_dir(env["ckpt"])
    common = dict(tlc=arch.tlc, train_size=arch.train_size)
    restorer = tiny_restorer(tmp_path_factory)
    predicts = {
        "input": lambda x: x,
        "deblur": _module_predict(ModelArch("baseline", backbone=arch.deblur, **common), params["deblur"]),
        "denoise": _module_predict(ModelArch("baseline", backbone=arch.denoise, **common), params["denoise"]),
        "serial": _module_predict(ModelArch("serial", deblur=arch.deblur, denoise=arch.denoise, **common),
                                  {"deblur": params["deblur"], "denoise": params["denoise"]}),
        "restorenet": lambda x: restorer(x, clip=True),
    }
    examples = _examples(env)
    assert [(e["dataset"], e["kind"], e["name"]) for e in examples] == \
        [(i["dataset"], i["kind"], i["name"]) for i in result["images"]]
    sums = {}
    for ex, image in zip(examples, result["images"]):
        for m, f in predicts.items():
            y = f(ex["input"])
            psnr = min(metrics.psnr(y, ex["target"]), scoring.PSNR_CAP)
            ssim = metrics.ssim(y, ex["target"])
            # The CLI's default engine on a CPU (OpenVINO, fp32) equals JAX to ~1e-7 per pixel: hence the atol.
            np.testing.assert_allclose([image["scores"][m]["psnr"], image["scores"][m]["ssim"]], [psnr, ssim],
                                       rtol=1e-6, atol=1e-6, err_msg=f"{ex['dataset']}/{ex['kind']}/{ex['name']}/{m}")
            sums.setdefault((ex["dataset"], ex["kind"], m), []).append((psnr, ssim))
    for (dataset, kind, m), vals in sums.items():
        got = result["groups"][dataset][kind][m]
        np.testing.assert_allclose([got["psnr"], got["ssim"]], np.mean(vals, axis=0), rtol=1e-6, atol=1e-6)
    # The methods really differ (a mix-up of subtrees would make rows coincide).
    realblur = result["groups"]["realblur_j"]["blur_noise"]
    assert len({round(realblur[m]["psnr"], 6) for m in METHODS}) == len(METHODS)


def test_baseline_checkpoint_rows(env, report, tmp_path):
    """A single Baseline checkpoint gives input and model rows; the deblur backbone saved alone scores the same."""
    arch, params = model_dir.load_model_dir(env["ckpt"])
    single = ModelArch("baseline", backbone=arch.deblur, tlc=arch.tlc, train_size=arch.train_size)
    ckpt = model_dir.save_model_dir(tmp_path / "deblur", params["deblur"], single)
    out = tmp_path / "out"
    assert evaluate.main(["--checkpoint", str(ckpt), "--dataset", "realblur_j", "--limit", "2", "--kinds",
                          "blur_noise,blur", "--data-dir", str(env["data_dir"]), "--out", str(out), "-q"]) == 0
    single_result = json.loads((out / "eval_realblur_j_test.json").read_text())
    assert single_result["methods"] == ["input", "model"]
    full = report[0]["groups"]["realblur_j"]
    for kind in ("blur_noise", "blur"):
        got = single_result["groups"]["realblur_j"][kind]
        np.testing.assert_allclose(got["model"]["psnr"], full[kind]["deblur"]["psnr"], rtol=1e-6)
        np.testing.assert_allclose(got["input"]["ssim"], full[kind]["input"]["ssim"], rtol=1e-6)


def test_with_tiling_routes_large_images_to_tiles():
    """--tile tiles every image; without it only images over --max-pixels are tiled (in AUTO_TILE tiles)."""
    shapes = []

    def fn(x):
        shapes.append(x.shape[:2])
        return x * 0.5

    img = np.random.default_rng(0).random((40, 50, 3)).astype(np.float32)
    np.testing.assert_allclose(evaluate.with_tiling(fn, tile=16, overlap=4)(img), img * 0.5, rtol=1e-6)
    assert set(shapes) == {(16, 16)} and len(shapes) > 4
    shapes.clear()
    evaluate.with_tiling(fn, max_pixels=40 * 50)(img)  # at the budget: whole image
    assert shapes == [(40, 50)]
    big = np.zeros((evaluate.AUTO_TILE + 8, 40, 3), np.float32)
    shapes.clear()
    evaluate.with_tiling(fn, max_pixels=40 * 50)(big)
    assert set(shapes) == {(evaluate.AUTO_TILE, 40)} and len(shapes) == 2


def test_tiled_cli_run(env, report, tmp_path):
    """--tile through the CLI (single Baseline checkpoint: one compilation): tiles change the model row only
    slightly (channel attention pools per tile), the input row not at all."""
    arch, params = model_dir.load_model_dir(env["ckpt"])
    single = ModelArch("baseline", backbone=arch.deblur, tlc=arch.tlc, train_size=arch.train_size)
    ckpt = model_dir.save_model_dir(tmp_path / "deblur", params["deblur"], single)
    out = tmp_path / "out"
    assert evaluate.main(["--checkpoint", str(ckpt), "--dataset", "realblur_j", "--limit", "1", "--kinds",
                          "blur", "--tile", "16", "--overlap", "8", "--data-dir", str(env["data_dir"]),
                          "--out", str(out), "-q"]) == 0
    tiled = json.loads((out / "eval_realblur_j_test.json").read_text())
    whole = report[0]["images"][1]  # realblur_j, first image, kind 'blur'
    assert whole["kind"] == "blur" and tiled["images"][0]["name"] == whole["name"]
    assert tiled["tiling"]["tile"] == 16
    got = tiled["images"][0]["scores"]
    assert got["input"] == whole["scores"]["input"]
    assert got["model"]["psnr"] != whole["scores"]["deblur"]["psnr"]
    assert got["model"]["psnr"] == pytest.approx(whole["scores"]["deblur"]["psnr"], abs=3.0)


def test_crop_option(env, tmp_path):
    """--crop centre-crops every image (one small shape to compile); the gt kind then scores exactly."""
    arch, params = model_dir.load_model_dir(env["ckpt"])
    single = ModelArch("baseline", backbone=arch.deblur, tlc=arch.tlc, train_size=arch.train_size)
    ckpt = model_dir.save_model_dir(tmp_path / "deblur", params["deblur"], single)
    out = tmp_path / "out"
    assert evaluate.main(["--checkpoint", str(ckpt), "--dataset", "realblur_j", "--limit", "1", "--kinds", "gt",
                          "--crop", "16", "--data-dir", str(env["data_dir"]), "--out", str(out), "-q"]) == 0
    result = json.loads((out / "eval_realblur_j_test.json").read_text())
    assert result["crop"] == 16 and [i["size"] for i in result["images"]] == [[16, 16]]
    assert result["groups"]["realblur_j"]["gt"]["input"] == {"psnr": scoring.PSNR_CAP, "ssim": 1.0, "count": 1}


@pytest.mark.parametrize("case, message", [
    ("checkpoint", "neither a model directory"),
    ("unknown", "unknown dataset 'nosuch'"),
    ("unprepared", "python -m restorenet_jax.prepare_data gopro_large"),
    ("split", "has no split 'test'"),
])
def test_bad_inputs_exit_2(env, tmp_path, capsys, case, message):
    ckpt, dataset, data_dir = str(env["ckpt"]), "realblur_j", str(env["data_dir"])
    if case == "checkpoint":
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "weights.bin").write_bytes(b"\0" * 10)
        ckpt = str(tmp_path / "junk")
    elif case == "unknown":
        dataset = "nosuch"
    elif case == "unprepared":
        dataset, data_dir = "gopro_large/blur", str(tmp_path / "empty")
    else:
        dataset = "bsd_b"
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--checkpoint", ckpt, "--dataset", dataset, "--data-dir", data_dir, "--out",
                       str(tmp_path / "out"), "-q"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_load_data_config(tmp_path):
    """--config takes a data config or a training config (its .data); a missing file is an error."""
    import os

    assert evaluate.load_data_config(None).eval_kinds == ",".join(KINDS)
    train_data = evaluate.load_data_config(os.path.join(ROOT, "configs", "default.py"))
    assert "noise" in train_data and "data" not in train_data
    with pytest.raises(ConfigFileError, match="not found"):
        evaluate.load_data_config(str(tmp_path / "missing.py"))


def test_cli_process_exit_status(tmp_path):
    """As a real process: a one-line error and status 2, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "restorenet_jax.evaluate", "--checkpoint", str(tmp_path),
                           "--dataset", "nosuch"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown dataset" in proc.stderr and "Traceback" not in proc.stderr
