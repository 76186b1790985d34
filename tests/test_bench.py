"""The benchmark harness: analytic FLOPs against the published MAC counts, and a --quick run whose JSON has
every section with positive finite timings and whose Markdown report renders."""
import json
import math
import sys

import pytest

from restorenet_jax.configs import bench as bench_config
from restorenet_jax.bench import harness
from restorenet_jax.bench import report
from restorenet_jax.bench import targets
from restorenet_jax.bench import torch_reference
from restorenet_jax.bench import flops
from restorenet_jax.models.arch import GOPRO_W64, RESTORENET_EXTRA_W64, SIDD_W64, BaselineArch, ModelArch


def _baseline(arch):
    return ModelArch(kind="baseline", backbone=arch)


@pytest.mark.parametrize("arch, published_gmacs", [(GOPRO_W64, 82.0), (SIDD_W64, 83.0)])
def test_macs_match_published_figures(arch, published_gmacs):
    # The NAFNet paper: GoPro-w64 ~82 GMACs and SIDD-w64 ~83 GMACs at 256x256.
    gmacs = flops.model_macs(_baseline(arch), 256, 256)["backbone"] / 1e9
    assert gmacs == pytest.approx(published_gmacs, rel=0.03)


def test_macs_follow_padding_and_training_rule():
    tiny = BaselineArch(4, (1, 1), 1, (1, 1), 2, 2)
    model = _baseline(tiny)
    # Inputs are padded to a multiple of 4, so 13x13 costs exactly what 16x16 does.
    assert flops.model_macs(model, 13, 13) == flops.model_macs(model, 16, 16)
    # Doubling both sides quadruples the per-pixel work; only the pooled attention vector is size-independent.
    attention = sum(flops.block_macs(c, 0, 2, 2) * n for c, n in ((4, 1), (8, 1), (16, 1), (8, 1), (4, 1)))
    small, big = flops.model_macs(model, 16, 16)["backbone"], flops.model_macs(model, 32, 32)["backbone"]
    assert big - attention == 4 * (small - attention)
    rn = ModelArch(kind="restorenet", deblur=GOPRO_W64, denoise=SIDD_W64, extra=RESTORENET_EXTRA_W64)
    macs = flops.model_macs(rn, 256, 256)
    extra_step = flops.train_flops(rn, 256, 256, 8, frozenset({"extra"}))
    assert extra_step == 2 * 8 * (macs["deblur"] + macs["denoise"] + 3 * macs["extra"])
    assert flops.inference_flops(rn, 256, 256, 2) == 2 * 2 * sum(macs.values())


def test_peak_table_lookup():
    assert flops.peak_flops("NVIDIA H100 80GB HBM3", "bfloat16") == pytest.approx(989e12)
    assert flops.peak_flops("NVIDIA H100 PCIe", "float32") == pytest.approx(51e12)
    assert flops.peak_flops("cpu", "float32") is None


def _check_timed(entry):
    assert "error" not in entry, entry
    for key in ("median_s", "min_s", "mean_s", "ms"):
        assert math.isfinite(entry[key]) and entry[key] > 0, (entry["name"], key, entry[key])
    assert entry["min_s"] <= entry["median_s"]
    assert entry["gflop"] > 0
    assert entry["peak_memory"]["bytes"] > 0


def test_quick_run_has_every_section_and_renders(tmp_path):
    cfg = bench_config.get_config("quick")
    cfg.label, cfg.suite = "test", "quick"
    with_torch = torch_reference.unavailable_reason() is None
    saved = []
    results = harness.run(cfg, None, with_torch=with_torch, progress=False, on_entry=saved.append)
    # After every entry the results so far are handed out (a killed run keeps what finished), marked partial.
    timed_entries = sum(len(results[s]) for s in ("infer", "train", "degrade", "torch_infer", "torch_train"))
    assert len(saved) == timed_entries and all(p["meta"]["partial"] for p in saved)
    assert [len(p["infer"]) for p in saved[:2]] == [1, 2] and "partial" not in results["meta"]
    assert "**Partial:**" in report.to_markdown(saved[0])

    assert len(results["infer"]) == len(cfg.infer_models) * len(cfg.dtypes)
    assert len(results["train"]) == len(cfg.train) * len(cfg.train_batches)
    for entry in results["infer"] + results["train"]:
        _check_timed(entry)
        assert entry["lower_s"] > 0 and entry["compile_s"] > 0
        assert entry["program_bytes"] > 0
        assert entry["tflops_per_s"] > 0
    for entry in results["train"]:
        assert entry["images_per_s"] == pytest.approx(entry["batch"] / entry["median_s"])
    # The device degradations: one entry per (noise, blur) and batch, timed like the rest, with a table.
    assert len(results["degrade"]) == len(cfg.degrade) * len(cfg.train_batches)
    for entry in results["degrade"]:
        assert "error" not in entry and 0 < entry["min_s"] <= entry["median_s"] and entry["peak_memory"]["bytes"] > 0
        assert entry["shape"] == [entry["batch"], cfg.train_size, cfg.train_size, 3] and entry["program_bytes"] > 0
    assert "## Device degradations" in report.to_markdown(results)
    extra = next(e for e in results["train"] if e["stage"] == "extra")
    assert extra["trainable"] == ["extra"]
    if with_torch:
        assert results["torch_infer"] and results["torch_train"]
        for entry in results["torch_infer"] + results["torch_train"]:
            _check_timed(entry)
        assert len(results["comparisons"]) == len(results["torch_infer"]) + len(results["torch_train"])
        assert all(c["torch_over_jax"] > 0 for c in results["comparisons"])
    meta = results["meta"]
    assert meta["versions"]["jax"] and meta["versions"]["flax"] and meta["device"]["device_kind"]

    markdown = report.to_markdown(results)
    sections = ["## Inference (JAX)", "## Training step (JAX"]
    sections += ["## Inference (PyTorch", "## Training step (PyTorch", "## JAX vs PyTorch"] if with_torch else []
    for title in sections:
        assert title in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| tiny_")]
    timed = sum(len(results[s]) for s in ("infer", "train", "torch_infer", "torch_train"))
    assert len(rows) == timed

    (smoke,) = results["targets"]  # the ratio of the two measured train steps, judged on any device
    by_name = {e["name"]: e for e in results["train"]}
    assert smoke["value"] == pytest.approx(by_name["train/tiny_restorenet-extra/b2"]["ms"]
                                           / by_name["train/tiny_baseline-full/b2"]["ms"])
    assert smoke["verdict"] in ("met", "missed") and "## Targets" in markdown

    paths = report.write(results, markdown, str(tmp_path / "sub" / "quick.json"))
    assert [p.name for p in paths] == ["quick.json", "quick.md"]
    assert json.loads(paths[0].read_text())["infer"][0]["ms"] == results["infer"][0]["ms"]
    assert paths[1].read_text().startswith("# RestoreNet-JAX benchmark")


def test_cli_lists_entries_and_rejects_bad_input(capsys):
    assert harness.main(["--list", "--no-torch"]) == 0
    names = capsys.readouterr().out.split()
    assert "infer/gopro64/bfloat16" in names and "train/restorenet64-extra/b32" in names
    assert not any(n.startswith("torch-") for n in names)
    for argv in (["--quick", "--only", "nothing-matches*"], ["--size", "720by1280"], ["--iters", "0"],
                 ["--kernel-modes", "plain"]):  # only the default block implementation exists in this version
        with pytest.raises(SystemExit) as exc:
            harness.main(argv)
        assert exc.value.code == 2


def _fake_results(device_kind, **ms):
    train = [{"name": f"train/{k}", "ms": v, "mfu": 0.4} for k, v in ms.items()]
    return {"meta": {"device": {"device_kind": device_kind}}, "infer": [], "train": train}


TARGETS = [dict(entry="train/a", field="ms", max=30.0), dict(entry="train/a", field="mfu", min=0.5),
           dict(entry="train/b", over="train/a", field="ms", max=1.2), dict(entry="train/missing", field="ms", max=1.0)]


def test_targets_verdicts_on_the_target_device():
    rows = targets.evaluate(_fake_results("NVIDIA H100 80GB HBM3", a=25.0, b=31.0), TARGETS, "H100")
    assert [r["verdict"] for r in rows] == ["met", "missed", "missed", "not measured: train/missing"]
    assert rows[2]["value"] == pytest.approx(31.0 / 25.0)
    rows = targets.evaluate(_fake_results("NVIDIA H100 PCIe", a=35.0, b=28.0), TARGETS[:1] + TARGETS[2:3],
                                  "H100")
    assert [r["verdict"] for r in rows] == ["missed", "met"]


def test_targets_off_the_target_device_are_informative_except_ratios():
    rows = targets.evaluate(_fake_results("cpu", a=25.0, b=26.0), TARGETS[:3], "H100")
    assert rows[0]["verdict"] == "n/a on cpu (target is for H100; would be met)"
    assert rows[1]["verdict"].startswith("n/a on cpu") and rows[1]["verdict"].endswith("would be missed)")
    assert rows[2]["verdict"] == "met"  # a ratio of two figures on the same device applies anywhere
    lines = targets.to_markdown(rows, "H100")
    assert lines[0].startswith("## Targets") and len([x for x in lines if x.startswith("| train/")]) == 3
    with pytest.raises(ValueError, match="exactly one"):
        targets.evaluate(_fake_results("cpu", a=1.0), [dict(entry="train/a", field="ms")], "H100")


def test_profile_summarises_a_trace_and_keeps_the_hlo(tmp_path, capsys):
    from restorenet_jax.bench import profile
    import gzip

    assert profile.main(["--quick", "--entry", "infer/tiny_baseline/float32", "--out", str(tmp_path),
                         "--iters", "2", "--top", "5"]) == 0
    summary = (tmp_path / "infer_tiny_baseline_float32.md").read_text()
    assert summary.startswith("# Profile of infer/tiny_baseline/float32")
    assert "| convolution |" in summary  # the CPU trace names its XLA ops: the convolutions are found
    assert sum(line.startswith("| `") for line in summary.splitlines()) == 5
    hlo = gzip.decompress((tmp_path / "infer_tiny_baseline_float32.hlo.txt.gz").read_bytes()).decode()
    assert "HloModule" in hlo and "convolution" in hlo
    assert profile.kind_of("sm90_xmma_fprop_implicit_gemm_bf16") == "convolution"
    assert profile.kind_of("loop_multiply_fusion_40") == "fusion"
    with pytest.raises(SystemExit) as exc:
        profile.main(["--quick", "--entry", "infer/nope/float32", "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_compile_only_reports_compile_figures_without_running(tmp_path, capsys):
    assert harness.main(["--quick", "--compile-only", "--only", "train/tiny_baseline-full/b2",
                         "--out", str(tmp_path / "co")]) == 0
    (entry,) = json.loads((tmp_path / "co.json").read_text())["train"]
    assert entry["lower_s"] > 0 and entry["compile_s"] > 0 and entry["program_bytes"] > 0
    assert "ms" not in entry and "median_s" not in entry  # nothing was run
    assert not json.loads((tmp_path / "co.json").read_text())["torch_train"]


def test_torch_compile_peer_is_timed_and_compared(monkeypatch):
    """The torch.compile peer runs through the same entry code (Dynamo's 'eager' backend here: Inductor's C++ build
    is minutes on a CPU) and its ratio reaches the comparisons, the report and the ratio targets."""
    if torch_reference.unavailable_reason():
        pytest.skip(torch_reference.unavailable_reason())
    cfg = bench_config.get_config("quick")
    cfg.torch_compile_backend = "eager"
    cfg.iters, cfg.warmup = 2, 0
    arch = ModelArch.from_dict(cfg.models.tiny_baseline.to_dict())
    entry = torch_reference.bench_infer("tiny_baseline", arch, "float32", (20, 23), cfg, mode="compile")
    assert entry["mode"] == "compile" and entry["compile_s"] > 0 and entry["ms"] > 0
    with pytest.raises(ValueError, match="unknown torch mode"):
        torch_reference.bench_infer("tiny_baseline", arch, "float32", (20, 23), cfg, mode="jit")
    assert torch_reference.modes(cfg) == ["eager"]  # the quick suite never compiles
    cfg.torch_compile = "always"
    assert torch_reference.modes(cfg) == ["eager", "compile"]
    names = [name for _, name, _ in torch_reference.plan(cfg, {"tiny_baseline": arch, "tiny_restorenet": arch})]
    assert "torch-compile-infer/tiny_baseline/bfloat16" in names and "torch-compile-train/tiny_baseline-full/b2" in names

    jax_entry = {"name": "infer/tiny_baseline/float32", "model": "tiny_baseline", "dtype": "float32",
                 "kernels": "auto", "shape": entry["shape"], "ms": entry["ms"] / 3, "lower_s": 0.1, "compile_s": 0.2}
    results = {"meta": {"device": {"device_kind": "cpu"}}, "infer": [jax_entry], "train": [],
               "torch_infer": [{"name": "torch-compile-infer/tiny_baseline/float32", **entry}], "torch_train": []}
    (pair,) = report.comparisons(results)
    assert pair["torch_mode"] == "compile" and pair["torch_over_jax"] == pytest.approx(3.0)
    results["comparisons"] = [pair]
    assert report._versus_compiled(results)(jax_entry) == "3.00x"
    (row,) = targets.evaluate(results, [dict(entry="torch-compile-infer/tiny_baseline/float32",
                                             over="infer/tiny_baseline/float32", field="ms", min=2.5)], "H200")
    assert row["verdict"] == "met" and row["value"] == pytest.approx(3.0)


def test_gpu_check_plan_budget_and_summary(tmp_path, capsys):
    from restorenet_jax.bench import gpu_check

    out = str(tmp_path / "dev-date")
    assert gpu_check.main(["--out", out, "--plan"]) == 0
    planned = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in planned] == ["numerics", "infer", "profile", "train", "torch-train"]
    assert "XLA_FLAGS=--xla_gpu_autotune_level=0" in planned[3]
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--out", out, "--only", "nope"])
    assert exc.value.code == 2

    # Steps run in order while the budget lasts; a step past its limit is stopped and recorded.
    quick = [dict(name="a", cap=30, env={}, argv=[sys.executable, "-c", "pass"]),
             dict(name="b", cap=1, env={}, argv=[sys.executable, "-c", "import time; time.sleep(5)"]),
             dict(name="c", cap=30, env={}, argv=[sys.executable, "-c", "raise SystemExit(3)"])]
    with open(tmp_path / "log", "w") as log:
        records = gpu_check.run_steps(quick, budget_s=60, log=log)
    assert [r["status"] for r in records] == ["ok", "stopped at its 1 s limit", "exit 3"]
    with open(tmp_path / "log", "w") as log:
        assert gpu_check.run_steps(quick[:1], budget_s=5, log=log)[0]["status"] == "not run: budget spent"

    # The summary pairs the plain and default entries and the torch.compile peer from the step files.
    infer = {"infer": [{"name": "infer/gopro64/bfloat16/plain", "ms": 20.0, "compile_s": 16.0},
                       {"name": "infer/gopro64/bfloat16", "ms": 8.0, "compile_s": 9.0}],
             "torch_infer": [{"name": "torch-compile-infer/gopro64/bfloat16", "ms": 20.4}],
             "targets": [{"target": "infer/gopro64/bfloat16 ms <= 8", "value": 8.0, "verdict": "met"}]}
    (tmp_path / "dev-date-infer.json").write_text(json.dumps(infer))
    (tmp_path / "dev-date-numerics.json").write_text(json.dumps({"device": "gpu", "ok": True, "cases": [
        {"case": "baseline/float32", "bound": 1e-5, "modes": {"auto": {"output_rel": 1e-7, "grad_rel": 2e-7}}}]}))
    text = gpu_check.summary(out, [{"step": "infer", "status": "ok", "seconds": 3.0}], ["plain", "auto"])
    assert "| infer/gopro64/bfloat16 | 20.00 | 8.00 | 2.50x | 9.0 | 20.40 | 2.55x |" in text
    assert "all within bounds" in text and "| infer/gopro64/bfloat16 ms <= 8 | 8 | met |" in text

