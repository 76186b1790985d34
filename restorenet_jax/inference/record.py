"""Processing records: a JSON sidecar beside every restored image or video that says what was done to it.

`OUT/a.png` gets `OUT/a.png.restore.json` with
  * input: its path and SHA-256 (a stream: its URL, no hash), output: its path and SHA-256;
  * model: the checkpoint as given and resolved, which checkpoint of a workdir, the architecture, and a hash of the
    float32 parameters (`footage.params_fingerprint`: the same weights give the same hash wherever they are stored);
  * engine, precision (and why it was chosen), device, software versions (the package, JAX, NumPy, OpenCV,
    Pillow, ffmpeg, the engine's runtime), host;
  * settings: every command-line setting that decides the output's pixels (tiling, TLC, batch, temporal radius as
    resolved for this video, ...), under the restore command's own option names; for a video also its frame
    count, frames restored by an earlier interrupted run, audio outcome and temporal radius;
  * argv (the command as typed), `repeat` (an explicit command that gives the same output), start/finish times and
    the seconds taken.
It is written after the output is complete, through a temporary name renamed into place, so a record never
describes a partial output.

Repeating: `restore --from-record OUT/a.png.restore.json INPUT -o OUT2` takes the record's settings as defaults
(options given on the command line still win), refuses a checkpoint whose parameters do not hash as recorded,
and says whether the new output is bit for bit the recorded one when INPUT is the recorded input.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from tqdm import tqdm

from restorenet_jax.inference.footage import params_fingerprint

SUFFIX = ".restore.json"
VERSION = 1
# The restore command's options (argparse dests) that decide an output's pixels or which frames it holds; a
# record keeps them, and `--from-record` sets them back. max_pixels decides only whether an input is restored.
SETTINGS = ("checkpoint", "best", "tile", "overlap", "tile_batch", "precision", "engine", "tlc", "gray_as_rgb",
            "same_ext", "max_pixels", "batch", "duration", "segment_frames", "temporal")
_PACKAGES = ("jax", "jaxlib", "flax", "numpy", "pillow", "opencv-python-headless", "opencv-python", "imageio-ffmpeg",
             "onnxruntime", "openvino")
_CHUNK = 1 << 20
PROG = ("python", "-m", "restorenet_jax.restore")


class RecordError(ValueError):
    """A processing record cannot be read or used (one-line reason)."""


def record_path(output: Path) -> Path:
    """The record beside `output`: OUT/a.png -> OUT/a.png.restore.json."""
    return output.with_name(output.name + SUFFIX)


def sha256_file(path: Path | str) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _utc(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds")


def software_versions() -> dict:
    """Versions of the package and of everything that computes or encodes pixels (absent packages left out)."""
    import restorenet_jax

    out = {"restorenet_jax": restorenet_jax.__version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        import imageio_ffmpeg

        out["ffmpeg"] = imageio_ffmpeg.get_ffmpeg_version()
    except Exception:  # noqa: BLE001 - no bundled ffmpeg: images are still recorded
        pass
    return out


def _device(engine: str) -> str:
    """What ran the model: JAX's device kind, else the CPU's model name (graph engines run on the CPU)."""
    if engine == "jax":
        import jax

        d = jax.devices()[0]
        return f"{d.platform}: {d.device_kind}"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return "cpu: " + line.partition(":")[2].strip()
    except OSError:
        pass
    return "cpu: " + (platform.processor() or platform.machine())


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Writes `data` as JSON through a hidden temporary file, flushed and renamed over `path` (never torn)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def command_line(settings: Mapping[str, Any], inputs: Sequence[str], output_dir: str) -> list[str]:
    """The restore command (argv, program included) with every setting in `settings` given explicitly."""
    args = list(PROG)
    for key in SETTINGS:
        if key not in settings:
            continue
        value, flag = settings[key], "--" + key.replace("_", "-")
        if key == "tlc":
            args.append(flag if value else "--no-tlc")
        elif isinstance(value, bool):
            args += [flag] if value else []
        elif value is not None:
            args += [flag, str(value)]
    return args + [*inputs, "--output", output_dir]


@dataclass
class Recorder:
    """Writes the records of one restore run (what every output shares is gathered once).

    Attributes:
      model, engine, precision, device, software, settings, argv: see the module docstring.
      expect: a record being repeated (`--from-record`); an output of the same input is compared with it.
    """

    model: dict
    engine: str
    precision: dict
    device: str
    settings: dict
    argv: list[str]
    software: dict = field(default_factory=software_versions)
    expect: Optional[dict] = None

    @classmethod
    def for_run(cls, restorer: Any, checkpoint: str, which: str, settings: Mapping[str, Any], argv: Sequence[str],
                expect: Optional[dict] = None) -> "Recorder":
        """The recorder of a run with a loaded engine (`engines.load_engine`) and the parsed settings; the
        checkpoint is kept as an absolute path and engine, precision and TLC as resolved, so that a repeat does
        not depend on the working folder, the machine's `auto` choices or the environment."""
        arch = restorer.arch
        model = {"checkpoint": checkpoint, "path": str(Path(checkpoint).resolve()), "which": which,
                 "arch": arch.to_dict() if hasattr(arch, "to_dict") else repr(arch),
                 "params_fingerprint": params_fingerprint(getattr(restorer, "params", {}))}
        if getattr(restorer, "int8_model", None):
            model["int8_model"] = restorer.int8_model
        precision = restorer.precision.record() if hasattr(restorer, "precision") else {"precision": restorer.dtype}
        resolved = {**settings, "checkpoint": model["path"], "best": which == "best", "engine": restorer.engine,
                    "precision": precision["precision"], "tlc": bool(arch.tlc)}
        return cls(model=model, engine=restorer.engine, precision=precision, device=_device(restorer.engine),
                   settings={k: resolved[k] for k in SETTINGS if k in resolved}, argv=list(argv), expect=expect)

    def write(self, src: Path | str, dst: Path, started: float, finished: float, input_sha256: Optional[str] = None,
              video: Optional[Any] = None) -> Path:
        """Writes the record of `dst` (complete) restored from `src`; returns its path.

        Args:
          src: the input file or stream URL.
          dst: the finished output.
          started, finished: `time.time()` around the restoration.
          input_sha256: the hash of the bytes that were restored (images: hashed as read); None: hash `src` now.
          video: a `footage.JobResult` for a video or stream.
        """
        stream = isinstance(src, str)
        settings = dict(self.settings)
        if video is not None:
            settings["temporal"] = video.temporal  # "auto" resolved: a repeat uses the radius this video got
        if stream:
            inp = {"url": src, "sha256": None}
        else:
            inp = {"path": str(Path(src).resolve()), "bytes": Path(src).stat().st_size,
                   "sha256": input_sha256 or sha256_file(src)}
        where = inp.get("url") or inp["path"]
        rec = {"record_version": VERSION, "kind": "stream" if stream else ("video" if video is not None else "image"),
               "input": inp,
               "output": {"path": str(dst.resolve()), "bytes": dst.stat().st_size, "sha256": sha256_file(dst)},
               "model": self.model, "engine": self.engine, **self.precision, "device": self.device,
               "settings": settings,
               "software": self.software, "host": {"system": platform.system(), "machine": platform.machine(),
                                                   "cpus": os.cpu_count()},
               "argv": self.argv, "cwd": os.getcwd(),
               "repeat": shlex.join([*PROG, "--from-record", str(record_path(dst).resolve()), where,
                                     "--output", "OUT"]),
               "repeat_explicit": shlex.join(command_line(settings, [where], "OUT")),
               "started": _utc(started), "finished": _utc(finished), "seconds": round(finished - started, 3)}
        if video is not None:
            rec["video"] = {"frames": video.frames, "resumed_frames": video.resumed_frames, "audio": video.audio,
                            "temporal_k": video.temporal}
        path = record_path(dst)
        write_json_atomic(path, rec)
        self._compare(rec)
        return path

    def _compare(self, rec: dict) -> None:
        """Says, for a repeat of the same input, whether the output is the recorded one bit for bit."""
        exp = self.expect
        if not exp or not exp.get("input", {}).get("sha256") or exp["input"]["sha256"] != rec["input"]["sha256"]:
            return
        same = exp.get("output", {}).get("sha256") == rec["output"]["sha256"]
        tqdm.write(f"{'note' if same else 'warning'}: {rec['output']['path']} is "
              f"{'bit for bit the output' if same else 'NOT the same as the output'} recorded in "
              f"{exp.get('_path', 'the record')}", file=sys.stderr)


def load_record(path: Path | str) -> dict:
    """Reads a processing record; raises RecordError (one line) when it is missing, not JSON or not a record."""
    try:
        rec = json.loads(Path(path).read_text())
    except OSError as e:
        raise RecordError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise RecordError(f"{path} is not JSON: {e}") from None
    if not isinstance(rec, dict) or "record_version" not in rec or not isinstance(rec.get("settings"), dict):
        raise RecordError(f"{path} is not a processing record (no record_version / settings)")
    if rec["record_version"] > VERSION:
        raise RecordError(f"{path} is a version {rec['record_version']} record; this restore reads up to {VERSION}")
    rec["_path"] = str(path)
    return rec


def use_record_defaults(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Optional[dict]:
    """With `--from-record FILE` in `argv`: reads the record and makes its settings the parser's defaults (options
    on the command line still win; --checkpoint is then optional). Returns the record, or None without the option.

    Raises:
      RecordError: the record cannot be used.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--from-record")
    known, _ = pre.parse_known_args(argv)
    if not known.from_record:
        return None
    rec = load_record(known.from_record)
    defaults = {k: v for k, v in rec["settings"].items() if k in SETTINGS}
    if "checkpoint" not in defaults:
        raise RecordError(f"{known.from_record} names no checkpoint")
    parser.set_defaults(**defaults)
    for action in parser._actions:  # argparse checks required options before defaults count
        if action.dest in defaults:
            action.required = False
    return rec


def check_model(rec: dict, restorer: Any) -> None:
    """Raises RecordError when the loaded model's parameters are not the recorded ones."""
    want = rec.get("model", {}).get("params_fingerprint")
    got = params_fingerprint(getattr(restorer, "params", {}))
    if want and want != got:
        raise RecordError(f"the model's parameters hash to {got}, not {want} as recorded in {rec.get('_path')}: "
                          "another checkpoint (or a workdir trained further) would give other outputs")
