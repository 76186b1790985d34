"""Evaluate a checkpoint on a prepared dataset: PSNR / SSIM per dataset, input kind and method.

    python -m restorenet_jax.evaluate --checkpoint runs/demo --dataset embedded --split test
    python -m restorenet_jax.evaluate --checkpoint models/restorenet --dataset realblur_j,gopro_large/blur_gamma \
        --limit 50 --kinds blur_noise blur --out eval/

For a RestoreNet checkpoint the table compares, on the same degraded images: the degraded input itself, the deblur
backbone alone, the denoise backbone alone, the serial model deblur(denoise(x)) built from the same two backbones,
and RestoreNet (a serial checkpoint: the first four; a single Baseline: input and model). Every source image is
evaluated in each input kind (blur_noise, blur, noise, gt; noise seeded by --seed, as in training's eval), at full
resolution. Images with more than --max-pixels pixels, or every image when --tile is given, are restored in
overlapping tiles (restorenet_jax.tiling; channel attention makes tiled output differ slightly from untiled).
Every new image size compiles each method once; --crop N (centre crop) bounds that cost on variable-size sets.

Metrics follow BasicSR (restorenet_jax.metrics): PSNR over RGB, crop_border 0, on float outputs clipped to [0, 1]
(--quantize: the uint8-rounding protocol of GoPro); SSIM is the standard 2-D Gaussian SSIM (11x11, sigma 1.5, per
channel, valid region; equal to scikit-image's gaussian_weights=True, use_sample_covariance=False), or NAFNet's
3-D window with --ssim3d. Exact matches (the gt kind's input) score 100 dB.

Writes OUT/eval_<dataset>_<split>.json (settings, mean scores, per-image scores) and .md (the table), and prints the
table. Exit status 2 with a one-line message for an unusable checkpoint, an unknown or unprepared dataset, or a
missing split.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from restorenet_jax.configs.cli import HelpFormatter, add_verbosity_argument, quiet_logs
from restorenet_jax.configs.degradations import NOISE_KINDS
from restorenet_jax.configs.files import ConfigFileError
from restorenet_jax.inference.precision import add_precision_argument

Predict = Callable[[np.ndarray], np.ndarray]  # [H, W, C] -> [H, W, C]
AUTO_TILE = 512  # tile side used for images over --max-pixels when --tile is not given (the original's grid)


def with_tiling(fn: Predict, tile: int = 0, overlap: int = 32, max_pixels: int = 0) -> Predict:
    """`fn` restored in tiles of `tile` px (every image), or of AUTO_TILE px for images over `max_pixels`."""
    from restorenet_jax.inference import tiling

    def run(x: np.ndarray) -> np.ndarray:
        size = tile or (AUTO_TILE if max_pixels and x.shape[0] * x.shape[1] > max_pixels else 0)
        if not size:
            return fn(x)
        return tiling.tiled_apply(fn, x, tile=size, overlap=min(overlap, size // 2))

    return run


def load_data_config(spec: Optional[str]) -> Any:
    """configs/data.py's default, or `get_config([variant])` of a config file `path.py[:variant]` (its `.data` when
    it is a training config), read by the loader training uses.

    Raises:
      ConfigFileError: the file is missing or broken, or the variant unknown (one-line message).
    """
    if spec is None:
        from restorenet_jax.configs.data import get_data_config

        return get_data_config()
    from restorenet_jax.configs.files import load_config_file

    cfg = load_config_file(spec)
    return cfg.data if "data" in cfg else cfg


def output_stem(dataset: str, split: str) -> str:
    """'eval_<dataset>_<split>' with path-unsafe characters of the dataset spec replaced."""
    return f"eval_{re.sub(r'[^A-Za-z0-9_.@-]+', '-', dataset).strip('-')}_{split}"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--checkpoint", required=True, help="converted model directory or training workdir")
    p.add_argument("--dataset", required=True, help="dataset spec(s) NAME[/CONFIG][@SPLIT], comma-separated, e.g. "
                   "embedded, realblur_j, gopro_large/blur_gamma, realblur_tele/j, bsd_b@train")
    p.add_argument("--split", default="test", help="split for specs that name none (default: test)")
    p.add_argument("--limit", type=int, default=0, help="source images per dataset (0: all)")
    p.add_argument("--kinds", nargs="+", default=None,
                   help="input kinds among blur_noise blur noise gt (default: the data config's eval_kinds)")
    p.add_argument("--out", default="eval_results", help="folder for the JSON and Markdown results")
    p.add_argument("--best", action="store_true", help="from a training workdir, the best checkpoint by "
                   "validation PSNR instead of the latest")
    p.add_argument("--tlc", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time local converter for channel attention (default: the checkpoint's setting)")
    p.add_argument("--tile", type=int, default=0, help="restore every image in tiles of this size (0: whole "
                   "images, except those over --max-pixels)")
    p.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles (<= tile/2)")
    p.add_argument("--max-pixels", type=int, default=2_000_000,
                   help=f"images with more pixels are tiled ({AUTO_TILE} px tiles) when --tile is 0 (0: never)")
    p.add_argument("--crop", type=int, default=None, help="centre-crop every image to this square side first "
                   "(default: the data config's eval_crop, 0 = full resolution); fewer shapes compile faster")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: the data config's data_dir)")
    p.add_argument("--config", default=None, metavar="FILE.py[:VARIANT]",
                   help="data or training config file, with a variant as training takes it (e.g. "
                   "configs/bsd64.py:demo_cctv); its noise / blur / eval_crop settings make the degraded inputs "
                   "(default: the built-in configs/data.py)")
    p.add_argument("--noise", default=None, choices=NOISE_KINDS,
                   help="override the data config's noise model (default: the config's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic degradations")
    p.add_argument("--quantize", action="store_true", help="round images to uint8 levels before scoring")
    p.add_argument("--ssim3d", action="store_true", help="NAFNet's 3-D SSIM window instead of the standard 2-D")
    p.add_argument("--engine", default="auto", choices=("auto", "jax", "onnxruntime", "openvino"),
                   help="what runs the model (same scores): auto = JAX on an accelerator, else OpenVINO, else ONNX "
                   "Runtime when installed, else JAX (default: auto)")
    add_precision_argument(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_verbosity_argument(p)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; returns 0, or exits with status 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_logs(args.verbosity)
    if min(args.limit, args.tile, args.max_pixels, args.crop or 0) < 0:
        parser.error("--limit, --tile, --max-pixels and --crop must be >= 0")
    if args.tile and not 0 <= 2 * args.overlap <= args.tile:
        parser.error("--overlap must be between 0 and tile/2")
    try:
        data_cfg = load_data_config(args.config)
    except ConfigFileError as e:  # a missing or broken file, an unknown variant: one line, not usage + traceback
        parser.exit(2, f"{parser.prog}: error: --config: {e}\n")
    if args.data_dir:
        data_cfg.data_dir = args.data_dir
    if args.crop is not None:
        data_cfg.eval_crop = args.crop
    if args.noise:
        data_cfg.noise.kind = args.noise
    if args.kinds:
        data_cfg.eval_kinds = ",".join(k for arg in args.kinds for k in arg.split(","))
    data_cfg.eval_datasets = args.dataset

    from restorenet_jax.data import pipeline
    from restorenet_jax.data.transforms import KINDS

    bad = [k for k in data_cfg.eval_kinds.split(",") if k.strip() and k.strip() not in KINDS]
    if bad:
        parser.error(f"--kinds: unknown kind(s) {', '.join(bad)}; expected some of {', '.join(KINDS)}")
    try:
        opened = pipeline.open_eval_sources(data_cfg, args.split, args.limit or None)
    except (KeyError, FileNotFoundError, ValueError) as e:
        parser.error(f"--dataset: {e.args[0] if e.args else e}")

    from restorenet_jax.inference import engines  # jax/orbax import is slow: after the cheap checks
    from restorenet_jax.models.model_dir import ModelDirError
    from restorenet_jax.models.predictor import split_methods

    try:
        predictor = engines.load_engine(args.checkpoint, args.engine, tlc=args.tlc, precision=args.precision,
                                        which="best" if args.best else "latest")
    except engines.EngineUnavailable as e:
        parser.error(f"--engine {args.engine} --precision {args.precision}: {e}")
    except (ModelDirError, OSError, ValueError, KeyError) as e:
        parser.error(f"--checkpoint: {e}")
    print(engines.describe(predictor), file=sys.stderr)
    arch = predictor.arch
    # One pass per image computes every method (each backbone once); tiles blend all methods' outputs together.
    stacked = with_tiling(predictor.compare_stacked, args.tile, args.overlap, args.max_pixels)

    from tqdm import tqdm

    from restorenet_jax.evaluation import scoring

    total = sum(n for _, _, n in opened) * len([k for k in data_cfg.eval_kinds.split(",") if k.strip()])
    examples = tqdm(pipeline.iter_eval_examples(data_cfg, opened, seed=args.seed), total=total, desc="evaluate",
                    unit="image", disable=args.quiet)
    metric_kw = {"quantize": args.quantize, "ssim3d": args.ssim3d}
    try:
        result = scoring.score_methods(lambda x: split_methods(stacked(x), predictor.methods), predictor.methods,
                                       examples, metric_kw)
    except ValueError as e:  # e.g. no usable examples, or an image below SSIM's 11x11 window
        parser.error(f"--dataset: {e}")
    table = scoring.format_method_tables(result)
    report = {"checkpoint": str(args.checkpoint), "which": "best" if args.best else "latest",
              "model": arch.kind, "tlc": arch.tlc, "engine": getattr(predictor, "engine", "jax"),
              **predictor.precision.record(),
              "dataset": args.dataset, "split": args.split,
              "limit": args.limit, "crop": data_cfg.eval_crop, "seed": args.seed, "noise": data_cfg.noise.kind,
              "tiling": {"tile": args.tile, "overlap": args.overlap, "max_pixels": args.max_pixels},
              "metrics": {"psnr": "BasicSR calculate_psnr: RGB, crop_border 0, outputs clipped to [0, 1]"
                          + (", uint8-quantized" if args.quantize else ", float"),
                          "ssim": ("NAFNet 3-D Gaussian window 11x11x11" if args.ssim3d else
                                   "2-D Gaussian 11x11, sigma 1.5, per channel, valid region (= scikit-image "
                                   "gaussian_weights=True, use_sample_covariance=False)"),
                          "psnr_cap_db": scoring.PSNR_CAP},
              **result}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = output_stem(args.dataset, args.split)
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    header = (f"## {args.checkpoint} ({arch.kind}, tlc={arch.tlc}) on {args.dataset}, split {args.split}\n\n"
              f"PSNR (dB) / SSIM ({'3-D' if args.ssim3d else '2-D Gaussian'}), "
              f"{'uint8-quantized' if args.quantize else 'float'} outputs clipped to [0, 1].\n\n")
    (out_dir / f"{stem}.md").write_text(header + table + "\n")
    print(header + table)
    print(f"wrote {out_dir / stem}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
