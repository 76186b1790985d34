"""The one naming rule of exported artifacts: every format has its own file names, so exports of several formats to
the same base (`-o deploy/demo`) sit side by side and never replace each other.

    format      artifact                 other files            record of the export
    onnx        BASE.onnx                                       BASE.onnx.json
    openvino    BASE.xml                 BASE.bin (weights)     BASE.openvino.json
    stablehlo   BASE.stablehlo                                  BASE.stablehlo.json

`--output` may be given as BASE or as the artifact's own name (BASE.onnx, ...); any other suffix (`demo.png`, or
`demo.onnx` for an OpenVINO export) is refused rather than written under a misleading name.
"""
from __future__ import annotations

from pathlib import Path

SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "stablehlo": ".stablehlo"}
EXTRA = {"openvino": (".bin",)}


class OutputNameError(ValueError):
    """`--output` names a file of another kind than the format writes; the message is one line."""


def artifact_path(output: str | Path, fmt: str) -> Path:
    """The artifact's path for `--output` (BASE or BASE + the format's suffix).

    Raises:
      OutputNameError: `output` ends in a suffix that is not `fmt`'s.
    """
    out = Path(output)
    want = SUFFIX[fmt]
    if not out.suffix:
        return out.with_suffix(want)
    if out.suffix.lower() == want:
        return out.with_suffix(want)
    other = next((f for f, s in SUFFIX.items() if s == out.suffix.lower()), None)
    what = f"a {other} artifact's suffix" if other else "not a suffix this format writes"
    raise OutputNameError(f"--output {out}: {out.suffix} is {what}; a {fmt} export is named BASE{want} "
                          f"(give {out.with_suffix('')} or {out.with_suffix(want)})")


def record_path(artifact: Path, fmt: str) -> Path:
    """The JSON record written beside `artifact` (format-specific: BASE.onnx.json, BASE.openvino.json, ...)."""
    return artifact.with_name(f"{artifact.with_suffix('').name}.{fmt}.json")


def files_written(artifact: Path, fmt: str) -> list[Path]:
    """Every file an export of `fmt` to `artifact` writes, the artifact first."""
    return [artifact, *(artifact.with_suffix(s) for s in EXTRA.get(fmt, ())), record_path(artifact, fmt)]
