"""Restoration quality on synthetic dark CCTV footage: our model against ffmpeg's denoisers.

    python -m restorenet_jax.bench.footage --checkpoint runs/demo --out bench/results/cpu-$(date +%F)-footage
    python -m restorenet_jax.bench.footage --quick --checkpoint runs/demo        (tiny clips, seconds)

Scenes (bench/footage_scenes.py: photos the training never sees, camera shake, a person-sized figure walking
across) get each noise setting (bench/footage_noise.py); every method (bench/footage_methods.py: ours frame by
frame; ours on frames fused with their aligned neighbours, "ours_temporal" (inference/temporal.py); ffmpeg's
hqdn3d, atadenoise, nlmeans, fftdnoiz, bm3d at a few strengths, best kept; any --clip-method) restores each clip
whole ("footage") and a few of its frames alone ("single frames"). PSNR, SSIM, PSNR inside the moving figure and
seconds per frame go to OUT.json and OUT.md, rewritten after every setting.
Settings, sizes and strengths: configs/footage_bench.py.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import zlib
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from restorenet_jax.bench import ffmpeg_pipe, footage_methods, footage_noise, footage_report, footage_scenes
from restorenet_jax.bench.report import write


def _clips(cfg, setting_name: str) -> list[tuple[footage_scenes.Clip, np.ndarray]]:
    """(clean clip, noisy uint8 frames) per scene of one setting; the noise seed depends on the setting's name."""
    s = cfg.settings[setting_name]
    out = []
    for i, photo in enumerate(cfg.scenes):
        clip = footage_scenes.make_clip(photo, s["motion"], cfg.height, cfg.width, cfg.frames, cfg.seed,
                                        cfg.max_shake, cfg.object_height, cfg.object_speed)
        rng = np.random.default_rng([cfg.seed, zlib.crc32(setting_name.encode()), i])
        out.append((clip, footage_noise.degrade_clip(clip.frames, s, rng)))
    return out


def _stills(cfg, clips):
    """Each clip's `stills_per_clip` evenly spaced frames as one-frame clips (clean, noisy)."""
    out = []
    for clip, noisy in clips:
        for t in np.unique(np.round(np.linspace(0, len(noisy) - 1, cfg.stills_per_clip)).astype(int)):
            out.append((footage_scenes.Clip(f"{clip.name}@{t}", clip.frames[t:t + 1], clip.mask[t:t + 1]),
                        noisy[t:t + 1]))
    return out


def evaluate(clips, methods: Sequence[footage_methods.Method], info: dict, tick: Callable[[], None] = lambda: None
             ) -> dict:
    """Scores the noisy input and every method at every strength on the clips of one setting."""
    entry = {"info": info, "input": footage_report.aggregate(
        footage_report.score_clip(noisy, clip.frames, clip.mask) for clip, noisy in clips), "methods": {}}
    for m in methods:
        strengths = {}
        for s in m.strengths:
            scores, seconds = [], 0.0
            for clip, noisy in clips:
                if m.prepare:
                    m.prepare(noisy.shape)
                start = time.perf_counter()
                out = footage_methods.as_uint8(m.run(noisy, s))
                seconds += time.perf_counter() - start
                scores.append(footage_report.score_clip(out, clip.frames, clip.mask))
                tick()
            strengths[s] = footage_report.aggregate(scores, seconds)
        entry["methods"][m.name] = {"kind": m.kind, "temporal": m.temporal, "strengths": strengths,
                                    "best": footage_report.best_strength(strengths)}
    return entry


def run(cfg, methods: Sequence[footage_methods.Method], skipped: list[dict], checkpoint: str = "",
        on_setting: Callable[[dict], None] = lambda r: None, progress: bool = True) -> dict:
    """The whole benchmark; `on_setting` gets the (partial) results after every setting."""
    results = {"meta": {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        "host": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                        "load_1min": os.getloadavg()[0], "checkpoint": checkpoint,
                        "ffmpeg": os.path.basename(ffmpeg_pipe.executable()), "partial": True},
               "config": {k: cfg[k] for k in ("seed", "height", "width", "frames", "scenes", "stills_per_clip",
                                              "max_shake", "object_height", "object_speed")},
               "settings": {n: dict(cfg.settings[n]) for n in cfg.setting_names},
               "methods": [{"name": m.name, "kind": m.kind, "temporal": m.temporal, "strengths": list(m.strengths)}
                           for m in methods],
               "skipped": skipped, "stills": {}, "footage": {}, "targets": []}
    per_setting = sum(len(m.strengths) for m in methods) * len(cfg.scenes) * (1 + cfg.stills_per_clip)
    ffmpeg_names = [m.name for m in methods if m.kind == "ffmpeg"]
    with tqdm(total=per_setting * len(cfg.setting_names), disable=not progress, desc="footage bench") as bar:
        for name in cfg.setting_names:
            s = cfg.settings[name]
            info = {"family": s["family"], "motion": s["motion"], "held_out": bool(s.get("held_out", False))}
            bar.set_postfix_str(name)
            clips = _clips(cfg, name)
            results["stills"][name] = evaluate(_stills(cfg, clips), methods, info, bar.update)
            results["footage"][name] = evaluate(clips, methods, info, bar.update)
            results["targets"] = (footage_report.targets("stills", results["stills"], cfg.targets, ffmpeg_names)
                                  + footage_report.targets("footage", results["footage"], cfg.targets,
                                                           ffmpeg_names))
            on_setting(results)
    results["meta"]["partial"] = False
    return results


def main(argv: list[str] | None = None) -> int:
    from restorenet_jax.configs import footage_bench

    full = footage_bench.get_config()
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.bench.footage", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="", help="our model: a model dir or training workdir (default: none, ours skipped)")
    p.add_argument("--out", default="", help="write OUT.json and OUT.md (default: none, the Markdown is only printed)")
    p.add_argument("--quick", action="store_true", help="tiny clips, two settings, one strength per filter")
    p.add_argument("--settings", nargs="+", metavar="NAME", help=f"settings to run (default: all: "
                   f"{' '.join(full.setting_names)})")
    p.add_argument("--methods", nargs="+", metavar="NAME", help=f"methods, in table order (default: "
                   f"{' '.join(full.methods)})")
    p.add_argument("--clip-method", action="append", default=[], metavar="NAME=MODULE:FUNCTION",
                   help="add a whole-clip restorer (e.g. temporal=pkg.mod:restore_clip; frames float32 [T,H,W,3] "
                   "in [0, 1] -> frames); it joins the methods")
    p.add_argument("--frames", type=int, help="frames per clip (default: the config's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    args = p.parse_args(argv)
    cfg = footage_bench.get_config("quick" if args.quick else "")
    try:
        if args.frames is not None:
            if args.frames < 1:
                raise ValueError(f"--frames must be >= 1, got {args.frames}")
            cfg.frames = args.frames
        if args.settings:
            unknown = [s for s in args.settings if s not in cfg.settings]
            if unknown:
                raise ValueError(f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(cfg.settings)})")
            cfg.setting_names = tuple(args.settings)
        extra = [footage_methods.import_clip_method(spec) for spec in args.clip_method]
        names = list(args.methods or cfg.methods) + [m.name for m in extra if m.name not in (args.methods or ())]
        if args.checkpoint and not os.path.exists(args.checkpoint):
            raise ValueError(f"checkpoint {args.checkpoint!r} does not exist")

        loaded = []  # one model for both of our methods

        def make_ours(name: str) -> footage_methods.Method:
            from restorenet_jax.inference.restorer import Restorer

            if not loaded:
                loaded.append(Restorer.from_checkpoint(args.checkpoint))
            if name == "ours_temporal":
                return footage_methods.temporal_restorer_method(loaded[0], cfg.batch, cfg.temporal_k)
            return footage_methods.restorer_method(loaded[0], cfg.batch)

        methods, skipped = footage_methods.build(names, cfg.strengths, make_ours if args.checkpoint else None,
                                                 cfg.fps, extra)
    except ValueError as e:
        p.exit(2, f"error: {e}\n")

    def save(partial: dict) -> None:
        if args.out:
            write(partial, footage_report.to_markdown(partial), args.out)

    results = run(cfg, methods, skipped, args.checkpoint, save, progress=not args.no_progress)
    save(results)
    print(footage_report.to_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
