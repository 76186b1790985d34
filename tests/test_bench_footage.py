"""Footage benchmark: a tiny run end to end (CLI, a whole-clip method through the hook, an ffmpeg filter at two
strengths), best-strength choice, PSNR inside the moving figure only, a missing ffmpeg filter skipped."""
import json
import math

import numpy as np
import pytest

from restorenet_jax.bench import footage, footage_methods, footage_report, footage_scenes
from restorenet_jax.configs import footage_bench


def blend_clip(frames):
    """A stand-in temporal restorer: each frame averaged with its neighbours (float in, float out)."""
    padded = np.concatenate([frames[:1], frames, frames[-1:]])
    return (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("footage") / "tiny"
    rc = footage.main(["--quick", "--methods", "hqdn3d", "nlmeans", "--clip-method",
                       "temporal=tests.test_bench_footage:blend_clip", "--out", str(out), "--no-progress"])
    assert rc == 0
    return json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".md").read_text()


def test_end_to_end_writes_json_and_markdown(tiny_run):
    results, markdown = tiny_run
    assert not results["meta"]["partial"]
    assert [m["name"] for m in results["methods"]] == ["hqdn3d", "nlmeans", "temporal"]
    for section in ("stills", "footage"):
        assert list(results[section]) == ["low_light", "dark_h264"]
        entry = results[section]["dark_h264"]
        assert entry["info"]["held_out"]
        for name in ("hqdn3d", "nlmeans", "temporal"):
            best = entry["methods"][name]["strengths"][entry["methods"][name]["best"]]
            assert set(best) >= {"psnr", "ssim", "mask_psnr", "s_per_frame", "frames"}
            assert 0 < best["psnr"] < 60 and 0 < best["ssim"] <= 1 and best["s_per_frame"] > 0
    assert results["footage"]["low_light"]["methods"]["temporal"]["temporal"]
    # the quick config: 3 frames per clip, one scene, one still per clip
    assert results["footage"]["low_light"]["input"]["frames"] == 3
    assert results["stills"]["low_light"]["input"]["frames"] == 1
    targets = {(t["section"], t["target"].split(" ")[0]) for t in results["targets"]}
    assert ("stills", "ours") not in targets  # no 'ours' in this run
    assert ("footage", "temporal") in targets
    assert "## Footage" in markdown and "dark_h264 (held out)" in markdown and "temporal" in markdown


def test_best_strength_is_the_highest_mean_psnr(tiny_run):
    results, _ = tiny_run
    for entry in results["footage"].values():
        m = entry["methods"]["hqdn3d"]
        assert m["best"] == max(m["strengths"], key=lambda k: m["strengths"][k]["psnr"])
    assert footage_report.best_strength({"a": {"psnr": 20.0}, "b": {"psnr": 22.5}, "c": {"psnr": 21.0}}) == "b"
    assert footage_report.best_strength({"a": {"psnr": 20.0}, "b": {"psnr": 20.0}}) == "a"


def test_mask_psnr_counts_only_pixels_inside_the_mask():
    clean = np.zeros((2, 4, 5, 3), np.uint8)
    restored = clean.copy()
    restored[0, 1, 1] = 51  # inside the mask: error 0.2 on each channel
    restored[1, 3, 4] = 255  # outside the mask: must not count
    mask = np.zeros((2, 4, 5), bool)
    mask[0, 1, 1] = mask[0, 0, 0] = mask[1, 2, 2] = True
    sse, count = footage_report.masked_sse(restored, clean, mask)
    assert count == 9 and sse == pytest.approx(3 * 0.2 ** 2)
    assert footage_report.psnr_from_sse(sse, count) == pytest.approx(10 * math.log10(9 / (3 * 0.04)))
    assert footage_report.psnr_from_sse(0.0, 0) is None


def test_moving_figure_mask_follows_the_figure():
    clip = footage_scenes.make_clip("chelsea", "object", 48, 64, 3, seed=0, object_speed=3.0)
    cols = [np.nonzero(m.any(axis=0))[0] for m in clip.mask]
    assert all(len(c) for c in cols)
    assert cols[1].mean() - cols[0].mean() == pytest.approx(3.0, abs=0.6)
    static = footage_scenes.make_clip("chelsea", "static", 48, 64, 3, seed=0)
    assert not static.mask.any() and (static.frames == static.frames[:1]).all()


def test_missing_ffmpeg_filter_is_skipped(monkeypatch):
    monkeypatch.setattr(footage_methods.ffmpeg_pipe, "available_filters", lambda: frozenset({"hqdn3d"}))
    methods, skipped = footage_methods.build(["hqdn3d", "bm3d", "ours"], {"hqdn3d": ("4:3:6:4.5",), "bm3d": ("",)},
                                             make_ours=None)
    assert [m.name for m in methods] == ["hqdn3d"]
    assert {s["method"] for s in skipped} == {"bm3d", "ours"}
    assert "no 'bm3d' filter" in next(s["reason"] for s in skipped if s["method"] == "bm3d")
    with pytest.raises(ValueError, match="unknown method"):
        footage_methods.build(["nope"], {}, make_ours=None)


def test_frame_method_pads_the_last_batch():
    seen = []

    def restore_batch(x):
        seen.append(x.shape)
        return x
    m = footage_methods.frame_method("id", restore_batch, batch=2)
    frames = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    assert (m.run(frames, "") == frames).all() and seen == [(2, 8, 8, 3)] * 2


@pytest.mark.parametrize("argv", [["--settings", "nope"], ["--clip-method", "broken"],
                                  ["--clip-method", "t=no_such_module:f"], ["--frames", "0"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        footage.main(argv + ["--no-progress"])
    assert e.value.code == 2 and "error:" in capsys.readouterr().err


def _entry(**methods):
    """A footage entry with best-strength scores (psnr, mask_psnr, s_per_frame) per method."""
    return {"methods": {n: {"best": "", "strengths": {"": dict(zip(("psnr", "mask_psnr", "s_per_frame"), v))}}
                        for n, v in methods.items()}}


def test_temporal_targets_psnr_figure_and_cost():
    entry = _entry(ours=(27.0, 26.0, 0.10), ours_temporal=(30.5, 25.5, 0.25), nlmeans=(28.0, 24.0, 0.1))
    found = footage_report.targets("footage", {"low_light": entry}, dict(footage_bench.get_config().targets),
                                   ["nlmeans"])
    got = {t["target"].split(" (")[0].split(" +")[0]: t for t in found}
    assert got["temporal >= best ffmpeg"]["margin_db"] == pytest.approx(2.5) and got["temporal >= best ffmpeg"]["met"]
    assert got["temporal >= ours"]["margin_db"] == pytest.approx(3.5) and got["temporal >= ours"]["met"]
    figure = next(t for k, t in got.items() if k.startswith("temporal figure"))
    assert figure["margin_db"] == pytest.approx(-0.5) and not figure["met"]  # ghosting shows as a loss in the figure
    cost = next(t for k, t in got.items() if k.startswith("temporal s/frame"))
    assert cost["ratio"] == pytest.approx(2.5) and not cost["met"]


@pytest.fixture(scope="module")
def ours_run(tmp_path_factory):
    from tests.tiny_model import gentle_checkpoint

    out = tmp_path_factory.mktemp("footage_ours") / "ours"
    rc = footage.main(["--quick", "--checkpoint", str(gentle_checkpoint(tmp_path_factory)), "--settings", "low_light",
                       "--methods", "ours", "ours_temporal", "--out", str(out), "--no-progress"])
    assert rc == 0
    return json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".md").read_text()


def test_ours_temporal_row_next_to_single_frame(ours_run):
    results, markdown = ours_run
    methods = results["footage"]["low_light"]["methods"]
    assert list(methods) == ["ours", "ours_temporal"] and methods["ours_temporal"]["temporal"]
    k = footage_bench.get_config("quick").temporal_k
    best = methods["ours_temporal"]["strengths"][f"k={k}"]
    assert best["mask_psnr"] is not None and best["s_per_frame"] > 0
    # Three frames fused with their neighbours: not the single-frame restoration of them.
    assert best["psnr"] != methods["ours"]["strengths"][""]["psnr"]
    kinds = {t["target"].split(" ")[1] for t in results["targets"] if t["target"].startswith("temporal")}
    assert kinds == {">=", "figure", "s/frame"}
    assert f"| low_light | ours_temporal | `k={k}` |" in markdown and "x | " in markdown
