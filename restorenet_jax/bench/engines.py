"""Engine benchmark: restore throughput (frames/s) per engine at 720p and 1080p, with the official PyTorch model run
by OpenVINO and ONNX Runtime as the reference, in one run.

    python -m restorenet_jax.bench.engines --out bench/results/cpu-engines [--sizes 720p,1080p] [--iters 3]

Models: `demo` (the demo RestoreNet widths, configs/bsd64.py:demo) and `baseline32` (the GoPro Baseline layout at
width 32), random weights (timings do not depend on the values). Engines go through `inference.engines`, i.e. the
path `restore` takes (layout changes and copies included): jax (today's path: XLA), onnxruntime, openvino, each in
fp32 and, where the engine has it, bf16. The reference entries export the same weights in the official PyTorch
classes (convert/torch_models.py) with `torch.onnx.export` at the frame size, as a user would, and time that graph
in OpenVINO and ONNX Runtime. Every entry also records its largest difference from the JAX fp32 output and the
PSNR of its output against that output (both clipped to [0, 1], as the restored image is saved).

Precisions: float32, bfloat16 and int8. int8 is OpenVINO's: the model quantised with NNCF exactly as
`export --int8` does (deploy/quantize.py, same excluded layers), calibrated on --calibration-crops random crops of
`--calibration DIR`, else of the training data a `--checkpoint` records, else of the scikit-image photos the
embedded data set is made from.
`--checkpoint NAME=DIR` times a trained model (a training workdir or a model directory) under NAME instead of
random weights: the PSNR column then says what each precision does to real restorations.

Timing: one image per call, the median of --iters calls after --warmup untimed ones (the first compiles). Results go
to OUT.json and OUT.md after every entry, so a run cut short keeps what finished.
"""
from __future__ import annotations

import argparse
import datetime
import io
import os
import statistics
import sys
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from restorenet_jax.bench import report
from restorenet_jax.models.arch import BaselineArch, ModelArch

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}
DTYPES = ("float32", "bfloat16", "int8")
CALIBRATION_PHOTOS = ("astronaut", "coffee", "chelsea", "camera_man_free", "rocket", "hubble_deep_field")


def bench_models() -> dict[str, ModelArch]:
    """The benchmarked architectures (demo widths as restorenet_jax.configs.default.demo_model sets them)."""
    from restorenet_jax.configs import default

    cfg = default.get_config()
    default.demo_model(cfg.model)
    demo = ModelArch.from_dict(cfg.model.to_dict())
    baseline32 = ModelArch("baseline", backbone=BaselineArch(32, (1, 1, 1, 28), 1, (1, 1, 1, 1), dw_expand=1,
                                                             ffn_expand=2))
    return {"demo": demo, "baseline32": baseline32}


def time_calls(call: Callable[[], Any], warmup: int, iters: int) -> dict:
    """First-call seconds, then the median/min of `iters` calls after `warmup` more untimed ones."""
    start = time.perf_counter()
    out = call()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        call()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return {"first_s": first, "median_s": statistics.median(times), "min_s": min(times), "iters": iters,
            "fps": 1.0 / statistics.median(times), "_out": out}


def calibration_crops(folder: Optional[str], count: int, size: int, checkpoint: Optional[str] = None
                      ) -> list[np.ndarray]:
    """int8 calibration crops, chosen as `export --int8` chooses them: of the images in `folder`; else of the
    training data `checkpoint` records; else (a random model, a converted one) of scikit-image's bundled photos.

    A trained model calibrated on clean photos instead of inputs like its own lost 0.3 dB more against fp32 on the
    demo model: the benchmark measures what users get."""
    from restorenet_jax.deploy import quantize

    if folder:
        return quantize.folder_crops(folder, count, size)
    if checkpoint:
        try:
            return quantize.checkpoint_crops(checkpoint, count, size)
        except quantize.NoCalibration as e:
            print(f"int8 calibration of {checkpoint}: scikit-image's photos ({e})", file=sys.stderr)
    import skimage.data

    photos = []
    for name in CALIBRATION_PHOTOS:
        fn = getattr(skimage.data, name, None)
        try:
            img = np.asarray(fn(), np.float32) if fn else None
        except Exception:  # a photo this scikit-image version does not bundle
            img = None
        if img is not None:
            img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
            photos.append(img / 255.0)
    return quantize._random_crops(photos, count, size, seed=0)


def _int8_call(arch: ModelArch, params: Any, crops: Sequence[np.ndarray], folder: str) -> Callable:
    """OpenVINO running the NNCF-quantised model (as `export --int8` makes it) through `restore`'s engine."""
    import openvino as ov

    from restorenet_jax.deploy import quantize
    from restorenet_jax.inference.engines import GraphEngine

    model, _ = quantize.quantize_model(arch, params, crops)
    path = os.path.join(folder, f"int8-{os.getpid()}-{id(params)}.xml")
    ov.save_model(model, path, compress_to_fp16=False)
    return GraphEngine(arch, params, "openvino", "int8", int8_model=path).restore_batch


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) between two outputs clipped to [0, 1]; inf when equal."""
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2, dtype=np.float64))
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))


def _engine_call(name: str, dtype: str, arch: ModelArch, params: Any) -> Callable[[np.ndarray], np.ndarray]:
    if name == "jax":
        from restorenet_jax.models.predictor import Predictor

        predictor = Predictor(arch, params, dtype=dtype)
        return lambda x: np.asarray(predictor.restore_batch(x))
    from restorenet_jax.inference.engines import GraphEngine

    return GraphEngine(arch, params, name, dtype).restore_batch


def _reference_call(runtime: str, dtype: str, arch: ModelArch, params: Any, shape: tuple[int, int]) -> Callable:
    """The official PyTorch model with these weights, exported by torch.onnx.export at `shape`, run by `runtime`."""
    import torch

    from restorenet_jax.convert import key_map, torch_models

    model = torch_models.from_arch(arch)
    state = {k: torch.from_numpy(np.array(v)) for k, v in key_map.params_to_state_dict(params).items()}
    model.load_state_dict(state, strict=True)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, 3, *shape),), buf, opset_version=17, dynamo=False,
                          input_names=["image"], output_names=["restored"])
    data = buf.getvalue()
    if runtime == "onnxruntime":
        import onnxruntime as ort

        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        run = lambda nchw: session.run(None, {"image": nchw})[0]  # noqa: E731
    else:
        import openvino as ov

        from restorenet_jax.deploy.openvino_ir import precision_config

        request = ov.Core().compile_model(ov.Core().read_model(data), "CPU", precision_config(dtype))
        request = request.create_infer_request()
        run = lambda nchw: np.array(request.infer({0: nchw})[0])  # noqa: E731
    return lambda x: run(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).transpose(0, 2, 3, 1)


def plan(args: argparse.Namespace) -> list[tuple[str, str, str, str, str]]:
    """(model, size, engine, dtype, kind) entries in run order; kind 'engine' or 'reference'."""
    from restorenet_jax.inference.engines import installed

    out = []
    for model in args.models:
        for size in args.sizes:
            for engine in args.engines:
                if engine != "jax" and not installed(engine):
                    continue
                for dtype in args.dtypes:
                    if engine == "onnxruntime" and dtype in ("bfloat16", "int8"):
                        continue  # ONNX Runtime's CPU provider has no bf16 kernels; int8 is OpenVINO's (NNCF)
                    if engine == "jax" and dtype == "int8":
                        continue
                    out.append((model, size, engine, dtype, "engine"))
            if args.reference:
                for runtime in ("openvino", "onnxruntime"):
                    for dtype in args.dtypes:
                        if dtype == "int8":
                            continue  # the official model is timed as a user exports it: float
                        if installed(runtime) and not (runtime == "onnxruntime" and dtype == "bfloat16"):
                            out.append((model, size, runtime, dtype, "reference"))
    return out


def to_markdown(results: dict) -> str:
    """The table: one row per entry, speed-up against today's JAX fp32 path of the same model and size."""
    m = results["meta"]
    lines = [f"# Engine benchmark — {m['host_cpu']} ({m['host_cores']} cores)", "",
             f"- date: {m['date']}; load average {m['host_load_1min']:.1f} at start; default engine here: "
             f"{m['default_engine']}", "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
             f"- timing: {m['timing']}", "- reference: the official PyTorch classes with the same weights, "
             "`torch.onnx.export` at the frame size (opset 17), run by the named runtime", "",
             "| model | input | engine | precision | fps | s/frame | first call s | vs JAX fp32 | max abs diff vs JAX fp32 "
             "| PSNR vs JAX fp32 (dB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    jax_fp32 = {(e["model"], e["size"]): e["median_s"] for e in results["entries"]
                if e.get("engine") == "jax" and e.get("dtype") == "float32" and "median_s" in e}
    for e in results["entries"]:
        name = e["engine"] + (" (official model)" if e["kind"] == "reference" else "")
        if "error" in e:
            lines.append(f"| {e['model']} | {e['size']} | {name} | {e['dtype']} | failed: {e['error']} | | | | | |")
            continue
        base = jax_fp32.get((e["model"], e["size"]))
        ratio = f"{base / e['median_s']:.2f}x" if base else "–"
        diff = f"{e['max_abs_diff']:.1e}" if e.get("max_abs_diff") is not None else "–"
        psnr = e.get("psnr_vs_jax_fp32")
        psnr = f"{psnr:.1f}" if psnr is not None else ("identical" if e.get("max_abs_diff") == 0 else "–")
        lines.append(f"| {e['model']} | {e['size']} | {name} | {e['dtype']} | {e['fps']:.3g} | "
                     f"{e['median_s']:.3g} | {e['first_s']:.3g} | {ratio} | {diff} | {psnr} |")
    if m.get("partial"):
        lines[1:1] = ["", "**Partial:** entries not listed did not finish."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    intro, _, rest = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.bench.engines", description=intro, epilog=rest,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    csv = lambda s: [v.strip() for v in s.split(",") if v.strip()]  # noqa: E731
    p.add_argument("--models", type=csv, default=["demo", "baseline32"], help="comma-separated: demo, baseline32")
    p.add_argument("--sizes", type=csv, default=["720p", "1080p"], help="comma-separated: 720p, 1080p")
    p.add_argument("--engines", type=csv, default=["jax", "onnxruntime", "openvino"], help="engines to time")
    p.add_argument("--dtypes", type=csv, default=list(DTYPES), help="comma-separated: float32, bfloat16, int8")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=DIR",
                   help="time the trained model in DIR under NAME (repeatable), e.g. demo=runs/demo")
    p.add_argument("--calibration", default=None, metavar="DIR", help="int8: calibrate on crops of these images "
                   "(default: scikit-image's bundled photos)")
    p.add_argument("--calibration-crops", type=int, default=64, metavar="N", help="int8: calibration crops")
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="skip the official PyTorch model in OpenVINO / ONNX Runtime")
    p.add_argument("--iters", type=int, default=3, help="timed calls per entry (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first (>= 1: the first compiles)")
    p.add_argument("--out", default=None, help="write OUT.json and OUT.md (e.g. bench/results/cpu-engines)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the benchmark; prints the table; exit status 2 for bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    models = bench_models()
    named = {spec.partition("=")[0] for spec in args.checkpoint}
    bad = [v for v in args.models if v not in models and v not in named] + \
        [v for v in args.sizes if v not in SIZES] + [v for v in args.engines if v not in ("jax", "onnxruntime", "openvino")] + \
        [v for v in args.dtypes if v not in DTYPES]
    if bad or args.iters < 1 or args.warmup < 1:
        parser.error(f"unknown value(s) {', '.join(bad)}" if bad else "--iters and --warmup must be >= 1")
    trained = {}
    for spec in args.checkpoint:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"--checkpoint {spec!r}: expected NAME=DIR")
        trained[name] = path
    import jax

    from restorenet_jax.bench.harness import random_params
    from restorenet_jax.inference.engines import default_engine

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host_cpu": report._cpu_model(), "host_cores": os.cpu_count(), "host_load_1min": os.getloadavg()[0],
            "jax_device": jax.devices()[0].device_kind, "default_engine": default_engine(),
            "versions": {p: report._version(p) for p in ("jax", "onnxruntime", "openvino", "onnx", "torch")},
            "timing": f"one frame per call, median of {args.iters} after {args.warmup} untimed (the first compiles)"}
    results = {"meta": {**meta, "partial": True}, "entries": []}
    params = {}
    for name in args.models:
        if name in trained:
            from restorenet_jax.models.model_dir import ModelDirError
            from restorenet_jax.training.checkpoints import resolve_model

            try:
                models[name], params[name] = resolve_model(trained[name])
            except (ModelDirError, OSError, ValueError) as e:
                parser.error(f"--checkpoint {name}={trained[name]}: {e}")
        elif name in models:
            params[name] = random_params(models[name], 0)
    crops = {m: calibration_crops(args.calibration, args.calibration_crops, 256, trained.get(m))
             for m in args.models} if "int8" in args.dtypes else {}
    import tempfile

    int8_dir = tempfile.TemporaryDirectory(prefix="bench-int8-")
    reference_out: dict = {}
    entries = plan(args)
    for i, (model, size, engine, dtype, kind) in enumerate(entries):
        arch, shape = models[model], SIZES[size]
        x = np.random.default_rng(0).random((1, *shape, 3), dtype=np.float32)
        entry = {"model": model, "size": size, "engine": engine, "dtype": dtype, "kind": kind}
        print(f"[{i + 1}/{len(entries)}] {model} {size} {engine} {dtype} {kind} ...", file=sys.stderr, flush=True)
        try:
            if dtype == "int8":
                call = _int8_call(arch, params[model], crops[model], int8_dir.name)
            elif kind == "engine":
                call = _engine_call(engine, dtype, arch, params[model])
            else:
                call = _reference_call(engine, dtype, arch, params[model], shape)
            timed = time_calls(lambda: call(x), args.warmup, args.iters)
            out = np.asarray(timed.pop("_out"), np.float32)
            if (engine, dtype, kind) == ("jax", "float32", "engine"):
                reference_out[(model, size)] = out
            ref = reference_out.get((model, size))
            entry.update(timed, max_abs_diff=float(np.abs(out - ref).max()) if ref is not None else None,
                         psnr_vs_jax_fp32=psnr_db(out, ref) if ref is not None and np.any(out != ref) else None)
        except Exception as e:  # one failing entry must not lose the others
            entry["error"] = f"{e.__class__.__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        print(f"    {entry.get('fps', 0):.3g} fps" if "fps" in entry else f"    {entry['error']}", file=sys.stderr)
        results["entries"].append(entry)
        if args.out:
            report.write(results, to_markdown(results), args.out)
    results["meta"].pop("partial")
    markdown = to_markdown(results)
    print(markdown)
    if args.out:
        paths = report.write(results, markdown, args.out)
        print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
