"""int8 for CPUs: post-training quantisation of the OpenVINO model with NNCF, calibrated on crops of real inputs.

    python -m restorenet_jax.export --checkpoint runs/demo --format openvino --int8 [--calibration DIR] -o demo.xml

Calibration crops come from a folder of images the user gives (footage like what will be restored), or else from
the training data of the checkpoint: a training workdir records its data configuration (config.json), whose
training mix is read and degraded as for evaluation, so the crops look like the model's inputs. A converted model
directory records no data: it needs a folder.

What stays out of quantisation (chosen on the demo model and the width-32 Baseline; the engines benchmark,
`python -m restorenet_jax.bench.engines --dtypes float32,int8`, reports what int8 does to each output's PSNR):
  * "image" — the convolutions that read or write image pixels: every UNet's intro and ending convolution, the
    refine convolutions. Their inputs and outputs are the pixels themselves (or residuals added to them), so an int8
    step there shows as banding in flat dark areas; they are a small share of the work (3 channels on one side).
  * "attention" — the channel-attention branch (se_1, se_3 1x1 convolutions on the pooled vector): it scales
    whole channels, so a rounding error there moves every pixel of a channel; it costs nothing at any image size.
  * "residual" — the element-wise additions (NNCF's type Add): left to NNCF, it quantises the inputs of the
    residual additions, and with them the residual stream every block adds to and every LayerNorm reads. On the
    demo model (12 held-out 256x256 crops of chelsea and coffee, blur+noise and noise, calibrated on 300 crops of
    its training data as `export` does) that alone cost 0.31 dB against fp32; without it 0.02 dB (int8 against
    fp32: 39.4 -> 44.9 dB). Excluding every convolution of any one branch instead changed nothing (0.30-0.31 dB).
    The price on a 2-core AVX-512 CPU without AMX: 720p 1.05 -> 1.4-1.7 s per frame, where bf16 takes 1.10 s.
LayerNorm, GELU, the pooling and the other element-wise ops run in the precision of the compile hint (bf16 where
the CPU has it).

The quantised model is cached beside the checkpoint (CHECKPOINT/int8/model.xml, or int8-best/ for the best
checkpoint of a workdir) with a record of the weights it was made from, and `restore`/`serve --precision int8` use
it; `cached_model` refuses a cache made from other weights or another TLC setting.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from restorenet_jax.models.arch import ModelArch

# Excluded layer groups (module docstring): the last path part of a convolution's parameters names its layer.
EXCLUDED = {"image": ("intro", "ending", "refine_0", "refine_1"), "attention": ("se_1", "se_3")}
EXCLUDED_TYPES = {"residual": ("Add",)}  # groups of operation types, not of layers
DEFAULT_EXCLUDE = ("image", "attention", "residual")
RECORD = "int8.json"


class NoInt8Model(ValueError):
    """No usable int8 model is cached for this checkpoint (the message names the export command)."""


class NoCalibration(ValueError):
    """No calibration source: neither a usable folder nor training data recorded with the checkpoint."""


def cache_dir(checkpoint: str | os.PathLike, which: str = "latest") -> Path:
    """Where the int8 model of `checkpoint` is cached: CHECKPOINT/int8 (CHECKPOINT/int8-best for which='best')."""
    return Path(checkpoint) / ("int8-best" if which == "best" else "int8")


def _fingerprint(arch: ModelArch, params: Mapping[str, Any]) -> str:
    from restorenet_jax.inference.footage import params_fingerprint

    return params_fingerprint({"params": params, "arch": np.frombuffer(repr(arch).encode(), np.uint8)})


def cached_model(checkpoint: str | os.PathLike, arch: ModelArch, params: Mapping[str, Any],
                 which: str = "latest") -> Path:
    """The cached int8 IR (model.xml) of these weights and architecture; raises NoInt8Model otherwise."""
    folder = cache_dir(checkpoint, which)
    command = (f"python -m restorenet_jax.export --checkpoint {checkpoint} --format openvino --int8 "
               f"--output {folder / 'model.xml'}" + (" --best" if which == "best" else ""))
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        raise NoInt8Model(f"no int8 model for {checkpoint}: make it with `{command}`") from None
    if record.get("fingerprint") != _fingerprint(arch, params) or not (folder / "model.xml").is_file():
        raise NoInt8Model(f"the int8 model in {folder} was made from other weights or settings (tlc): remake it "
                          f"with `{command} --overwrite`")
    return folder / "model.xml"


# Calibration data.

def _random_crops(images: Iterable[np.ndarray], count: int, size: int, seed: int) -> list[np.ndarray]:
    """`count` crops of size x size (whole images when smaller), drawn round-robin over `images`."""
    images = [np.asarray(im, np.float32) for im in images]
    if not images:
        return []
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(count):
        im = images[i % len(images)]
        h, w = min(size, im.shape[0]), min(size, im.shape[1])
        top, left = rng.integers(0, im.shape[0] - h + 1), rng.integers(0, im.shape[1] - w + 1)
        crops.append(np.ascontiguousarray(im[top:top + h, left:left + w, :3]))
    return crops


def folder_crops(folder: str | os.PathLike, count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Crops of the images in `folder` (not recursive), float32 RGB in [0, 1]; raises NoCalibration when the
    folder is missing or holds no readable image."""
    from restorenet_jax.inference import media_io

    p = Path(folder)
    if not p.is_dir():
        raise NoCalibration(f"--calibration {folder}: no such folder")
    images = []
    for f in sorted(q for q in p.iterdir() if q.suffix.lower() in media_io.IMAGE_EXTS):
        try:
            images.append(media_io.read_image(f).rgb)
        except (media_io.UnreadableImage, OSError, ValueError):
            continue  # a stray unreadable file does not spoil the calibration
    if not images:
        raise NoCalibration(f"--calibration {folder}: no readable image in it (PNG, JPEG, ...)")
    return _random_crops(images, count, size, seed)


def training_config(checkpoint: str | os.PathLike) -> Path | None:
    """The training config.json recorded with a checkpoint (a workdir, or the best/ folder inside one)."""
    p = Path(checkpoint)
    return next((c for c in (p / "config.json", p.parent / "config.json") if c.is_file()), None)


def checkpoint_crops(checkpoint: str | os.PathLike, count: int, size: int, seed: int = 0,
                     images: int = 64) -> list[np.ndarray]:
    """Crops of degraded inputs drawn from the checkpoint's training data (its config.json's data.datasets, the
    train split, degraded as for evaluation with `seed`); raises NoCalibration when none is recorded or readable."""
    import ml_collections

    from restorenet_jax.data import pipeline

    path = training_config(checkpoint)
    if path is None:
        raise NoCalibration(f"{checkpoint} records no training data (no config.json beside it, as a converted "
                            "model directory): give --calibration DIR, a folder of a few images like those to "
                            "restore")
    cfg = ml_collections.ConfigDict(json.loads(path.read_text()))
    data_cfg = cfg.data if "data" in cfg else cfg
    data_cfg.eval_datasets = data_cfg.datasets
    try:
        opened = pipeline.open_eval_sources(data_cfg, "train", images)
        inputs = [e["input"] for e in pipeline.iter_eval_examples(data_cfg, opened, seed=seed)]
    except (KeyError, FileNotFoundError, ValueError) as e:
        raise NoCalibration(f"the training data of {checkpoint} cannot be read ({e.args[0] if e.args else e}): "
                            "give --calibration DIR") from None
    if not inputs:
        raise NoCalibration(f"the training data of {checkpoint} holds no example: give --calibration DIR")
    return _random_crops(inputs, count, size, seed)


# Quantisation.

def _weight_source(node: Any) -> str:
    """The friendly name of the Constant a convolution's weights come from (through Reshape/Convert/...)."""
    for _ in range(8):
        if node.get_type_name() == "Constant":
            return node.get_friendly_name()
        node = node.input_value(0).get_node() if node.get_input_size() else node
        if node.get_input_size() == 0 and node.get_type_name() != "Constant":
            break
    return ""


def excluded_nodes(model: Any, groups: Sequence[str] = DEFAULT_EXCLUDE) -> list[str]:
    """Names of the convolutions of `model` (an openvino.Model of deploy.onnx_graph) in the excluded `groups`.

    The graph names each weight constant after the parameters it holds (e.g. `deblur/encoders_0_0/se_1/kernel`),
    so a convolution's layer is its weight constant's second-to-last path part.
    """
    layers = {layer for g in groups for layer in EXCLUDED.get(g, ())}  # type groups (EXCLUDED_TYPES) name none
    names = []
    for op in model.get_ops():
        if op.get_type_name() in ("Convolution", "GroupConvolution", "ConvolutionBackpropData"):
            source = _weight_source(op.input_value(1).get_node()).split("/")
            if len(source) >= 2 and source[-2] in layers:
                names.append(op.get_friendly_name())
    return names


def quantize_model(arch: ModelArch, params: Mapping[str, Any], crops: Sequence[np.ndarray],
                   exclude: Sequence[str] = DEFAULT_EXCLUDE) -> tuple[Any, dict]:
    """(the int8 openvino.Model, a record of what was done) from float32 weights and calibration crops."""
    import nncf

    from restorenet_jax.deploy.onnx_graph import build_onnx
    from restorenet_jax.deploy.openvino_ir import read_onnx

    if not crops:
        raise NoCalibration("no calibration crops")
    unknown = set(exclude) - set(EXCLUDED) - set(EXCLUDED_TYPES)
    if unknown:
        known = sorted({**EXCLUDED, **EXCLUDED_TYPES})
        raise ValueError(f"unknown excluded group(s) {sorted(unknown)}; known: {known}")
    model = read_onnx(build_onnx(arch, params))
    ignored = excluded_nodes(model, exclude)
    types = [t for g in exclude for t in EXCLUDED_TYPES.get(g, ())]
    dataset = nncf.Dataset(list(crops), lambda x: np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32))
    scope = nncf.IgnoredScope(names=ignored, types=types, validate=False) if ignored or types else None
    quantized = nncf.quantize(model, dataset, subset_size=len(crops), fast_bias_correction=True, ignored_scope=scope)
    record = {"excluded_groups": list(exclude), "excluded_layers": len(ignored), "calibration_crops": len(crops),
              "crop_shape": list(crops[0].shape[:2]), "scheme": "NNCF min-max, performance preset, fast bias "
              "correction"}
    return quantized, record


def write_cache(checkpoint: str | os.PathLike, arch: ModelArch, params: Mapping[str, Any], model: Any,
                record: dict, which: str = "latest") -> Path:
    """Saves the int8 model and its record into `cache_dir(checkpoint)`; returns the model.xml path."""
    import openvino as ov

    folder = cache_dir(checkpoint, which)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".model.tmp{os.getpid()}.xml"
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), folder / "model.bin")
    os.replace(tmp, folder / "model.xml")
    full = {**record, "fingerprint": _fingerprint(arch, params), "tlc": arch.tlc, "kind": arch.kind}
    tmp_record = folder / f".{RECORD}.tmp{os.getpid()}"
    tmp_record.write_text(json.dumps(full, indent=2) + "\n")
    os.replace(tmp_record, folder / RECORD)  # last: a cache without its record is never used
    return folder / "model.xml"
