"""Export a model for deployment: an ONNX graph, an OpenVINO IR, or a serialized jax.export (StableHLO) program.

    python -m restorenet_jax.export --checkpoint models/restorenet --format onnx --output deploy/restorenet.onnx
    python -m restorenet_jax.export --checkpoint runs/demo --format openvino --output deploy/demo.xml
    python -m restorenet_jax.export --checkpoint runs/demo --format stablehlo --output deploy/demo.stablehlo

Every model kind (Baseline, RestoreNet, serial; TLC on or off) from a converted model directory or a training
workdir. Inputs and outputs are float32 RGB in [0, 1]; the models pad to their multiple and crop back themselves, so
any image size works:
  onnx       input `image` [N, 3, H, W] -> `restored` [N, 3, H, W] (NCHW), N, H, W dynamic unless --size / --batch;
             opset 17, runs in ONNX Runtime, OpenVINO and other ONNX runtimes.
  openvino   the same graph as an OpenVINO IR: OUT.xml + OUT.bin, float32 weights. Compile it with
             {"INFERENCE_PRECISION_HINT": "f32"} for float32 results: OpenVINO defaults to bf16 on CPUs with
             AVX-512 BF16 / AMX.
  stablehlo  `jax.export` serialized, weights inside: jax.export.deserialize(open(OUT, 'rb').read()).call(x) with
             x [B, H, W, 3] (NHWC) -> [B, H, W, 3], no model code needed. A TLC model needs --size.
--int8 (openvino) quantises the model to int8 with NNCF, calibrated on crops of --calibration DIR or else of the
checkpoint's training data (deploy/quantize.py says which layers stay in float and why); the result is written to
OUT and cached beside the checkpoint, where `restore`/`serve --precision int8` find it.
--compare (onnx, openvino) outputs every method the evaluate command scores, stacked along channels.
Beside the artifact, BASE.<format>.json records the model, the layout and the sizes. Every format has its own
names (BASE.onnx; BASE.xml + BASE.bin; BASE.stablehlo), so exports of several formats to one base keep each other's
files; --output is BASE or BASE + the format's suffix, any other suffix is refused (restorenet_jax.deploy.naming).

Exit status 0 on success, 2 for bad arguments: an unusable checkpoint, an unsupported format, a missing runtime
package, a suffix of another format, any file of the export already there without --overwrite.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from restorenet_jax.configs.cli import HelpFormatter
from restorenet_jax.deploy import naming

FORMATS = ("onnx", "openvino", "stablehlo")
SUFFIX = naming.SUFFIX
_PACKAGES = {"onnx": ("onnx",), "openvino": ("onnx", "openvino"), "stablehlo": (), "int8": ("nncf",)}


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W), both >= 1."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 720x1280, not {text!r}") from None
    if min(h, w) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be >= 1, not {text!r}")
    return h, w


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    intro, _, rest = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.export", description=intro, epilog=rest,
                                formatter_class=HelpFormatter)
    p.add_argument("--checkpoint", required=True, help="converted model directory or training workdir")
    p.add_argument("--format", required=True, choices=FORMATS, help="artifact to write")
    p.add_argument("--output", "-o", required=True,
                   help="artifact base path BASE, or BASE.onnx / BASE.xml / BASE.stablehlo for the chosen format")
    p.add_argument("--size", type=parse_size, default=None, metavar="HxW",
                   help="fix the input size (default: dynamic height and width)")
    p.add_argument("--batch", type=int, default=None, help="fix the batch size (default: dynamic)")
    p.add_argument("--best", action="store_true", help="from a training workdir, the best checkpoint by "
                   "validation PSNR instead of the latest")
    p.add_argument("--tlc", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time local converter for channel attention (default: the checkpoint's setting)")
    p.add_argument("--compare", action="store_true", help="onnx/openvino: output every compared method "
                   "(deblur, denoise, serial, restorenet) stacked along channels")
    p.add_argument("--bf16", action="store_true", help="stablehlo: compute in bfloat16 (inputs stay float32)")
    p.add_argument("--platforms", default="", help="stablehlo: lowering platforms, e.g. cpu,cuda (default: this "
                   "machine's)")
    p.add_argument("--int8", action="store_true", help="openvino: post-training int8 quantisation (NNCF), also "
                   "cached beside the checkpoint for --precision int8")
    p.add_argument("--calibration", default=None, metavar="DIR", help="--int8: a folder of images like the footage "
                   "to restore (default: the checkpoint's training data, recorded in a workdir's config.json)")
    p.add_argument("--calibration-crops", type=int, default=300, metavar="N", help="--int8: calibration crops "
                   "(default 300)")
    p.add_argument("--crop-size", type=int, default=256, metavar="PX", help="--int8: side of the calibration crops "
                   "(default 256)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return p


def _missing_packages(fmt: str) -> list[str]:
    import importlib.util

    return [p for p in _PACKAGES[fmt] if importlib.util.find_spec(p) is None]


def _write_atomic(path: Path, data: bytes) -> None:
    """Writes `path` through a temporary file renamed into place: a crash never leaves half an artifact."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export(args: argparse.Namespace, out: Path) -> list[Path]:
    """Loads the checkpoint and writes the artifact (and its .json record); returns the paths written."""
    from restorenet_jax.training.checkpoints import resolve_model

    arch, params = resolve_model(args.checkpoint, which="best" if args.best else "latest")
    if args.tlc is not None:
        arch = arch.replace(tlc=bool(args.tlc))
    record = {"format": args.format, "kind": arch.kind, "tlc": arch.tlc, "checkpoint": str(args.checkpoint),
              "size": list(args.size) if args.size else "dynamic", "batch": args.batch or "dynamic",
              "arch": arch.to_dict()}
    written = [out]
    if args.format == "stablehlo":
        from restorenet_jax.deploy.stablehlo import export_stablehlo

        platforms = [p.strip() for p in args.platforms.split(",") if p.strip()] or None
        blob = export_stablehlo(arch, params, size=args.size, batch=args.batch,
                                dtype="bfloat16" if args.bf16 else "float32", platforms=platforms)
        _write_atomic(out, blob)
        record.update(layout="NHWC", input="float32 [B, H, W, 3] RGB in [0, 1]", output="float32 [B, H, W, 3]",
                      dtype="bfloat16" if args.bf16 else "float32", platforms=platforms or "this machine's")
    else:
        from restorenet_jax.deploy.onnx_graph import METHODS, build_onnx

        proto = build_onnx(arch, params, compare=args.compare, size=args.size, batch=args.batch)
        channels = 3 * len(METHODS[arch.kind]) if args.compare else 3
        record.update(layout="NCHW", input="image: float32 [N, 3, H, W] RGB in [0, 1]",
                      output=f"restored: float32 [N, {channels}, H, W]",
                      methods=list(METHODS[arch.kind]) if args.compare else ["restored"])
        if args.int8:
            import shutil

            from restorenet_jax.deploy import quantize

            which = "best" if args.best else "latest"
            crops = (quantize.folder_crops(args.calibration, args.calibration_crops, args.crop_size)
                     if args.calibration else
                     quantize.checkpoint_crops(args.checkpoint, args.calibration_crops, args.crop_size))
            model, done = quantize.quantize_model(arch, params, crops)
            cached = quantize.write_cache(args.checkpoint, arch, params, model, done, which)
            record.update(int8=done, calibration=str(args.calibration or "the checkpoint's training data"),
                          cache=str(cached.parent))
            if cached.resolve() != out.resolve():
                for src, dst in ((cached.with_suffix(".bin"), out.with_suffix(".bin")), (cached, out)):
                    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
                    shutil.copyfile(src, tmp)
                    os.replace(tmp, dst)
            written.append(out.with_suffix(".bin"))
        elif args.format == "onnx":
            _write_atomic(out, proto.SerializeToString())
        else:
            from restorenet_jax.deploy.openvino_ir import save_openvino

            tmp = out.with_name(f".{out.stem}.tmp{os.getpid()}.xml")
            save_openvino(proto, tmp)
            os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
            os.replace(tmp, out)
            written.append(out.with_suffix(".bin"))
    sidecar = naming.record_path(out, args.format)
    _write_atomic(sidecar, (json.dumps(record, indent=2) + "\n").encode())
    return written + [sidecar]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; returns 0, or exits with status 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch is not None and args.batch < 1:
        parser.error("--batch must be >= 1")
    if args.compare and args.format == "stablehlo":
        parser.error("--compare applies to onnx and openvino")
    if args.bf16 and args.format != "stablehlo":
        parser.error("--bf16 applies to stablehlo; OpenVINO picks its precision when it compiles the IR")
    if args.int8 and args.format != "openvino":
        parser.error("--int8 applies to --format openvino")
    if args.calibration_crops < 1 or args.crop_size < 16:
        parser.error("--calibration-crops must be >= 1 and --crop-size >= 16")
    missing = _missing_packages(args.format) + (["nncf"] if args.int8 and _missing_packages("int8") else [])
    if missing:
        parser.error(f"--format {args.format}{' --int8' if args.int8 else ''} needs {', '.join(missing)}: "
                     "pip install 'restorenet-jax[deploy]'")
    if Path(args.output).is_dir():
        parser.error(f"--output {args.output} is a folder; give a file name such as "
                     f"{Path(args.output) / ('model' + SUFFIX[args.format])}")
    try:
        out = naming.artifact_path(args.output, args.format)
    except naming.OutputNameError as e:
        parser.error(str(e))
    if out.is_dir():
        parser.error(f"--output {out} is a folder; give a file name such as {out / ('model' + SUFFIX[args.format])}")
    taken = [p for p in naming.files_written(out, args.format) if p.exists() or p.is_symlink()]
    if taken and not args.overwrite:
        parser.error(f"--output {out}: {', '.join(map(str, taken))} already exists (--overwrite replaces it)")
    if args.format == "stablehlo" and args.size is None and args.tlc is not False:
        from restorenet_jax.models.model_dir import ModelDirError, read_arch

        try:  # cheap: arch.json only, so a TLC model fails before the slow load
            tlc = read_arch(args.checkpoint)[0].tlc if args.tlc is None else args.tlc
        except ModelDirError:
            tlc = False  # the load below reports the checkpoint problem
        if tlc:
            parser.error("a TLC model exports to StableHLO at a fixed size only: give --size HxW (or --no-tlc)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        parser.error(f"cannot create {out.parent}: {e.strerror or e}")

    from restorenet_jax.deploy.quantize import NoCalibration
    from restorenet_jax.models.model_dir import ModelDirError

    print(f"exporting {args.checkpoint} as {args.format} ...", file=sys.stderr)
    try:
        written = export(args, out)
    except NoCalibration as e:
        parser.error(str(e))
    except (ModelDirError, OSError, ValueError, KeyError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        parser.error(f"cannot export --checkpoint {args.checkpoint}: {reason}")
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
