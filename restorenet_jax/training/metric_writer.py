"""Training visibility: metrics.jsonl (one JSON object per line) + TensorBoard events + PNG samples.

Only process 0 writes; the other processes get a writer that does nothing.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Mapping

import numpy as np
from PIL import Image


class MetricWriter:
    def __init__(self, workdir: str | os.PathLike, enabled: bool = True):
        self.enabled = enabled
        self.workdir = Path(workdir)
        self._tb = None
        if enabled:
            SummaryWriter = _summary_writer_class()
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._tb = SummaryWriter(logdir=str(self.workdir / "tensorboard"))
            self._jsonl = open(self.workdir / "metrics.jsonl", "a", buffering=1)

    def scalars(self, step: int, values: Mapping[str, float], prefix: str = "train") -> None:
        """One line {"step", "split", name: value...} in metrics.jsonl and one TensorBoard scalar per value."""
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in values.items()}
        self._jsonl.write(json.dumps({"step": int(step), "split": prefix, **clean}) + "\n")
        for k, v in clean.items():
            self._tb.add_scalar(f"{prefix}/{k}", v, int(step))

    def image(self, step: int, name: str, image: np.ndarray) -> Path | None:
        """A float [H, W, 3] image in [0, 1] to TensorBoard and to WORKDIR/samples/<name>_<step>.png."""
        if not self.enabled:
            return None
        img = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
        self._tb.add_image(name, img, int(step), dataformats="HWC")
        out = self.workdir / "samples" / f"{name}_{int(step):07d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255.0 + 0.5).astype(np.uint8)).save(out)
        return out

    def flush(self) -> None:
        if self.enabled:
            self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self._tb.close()
            self._jsonl.close()


def _summary_writer_class():
    """tensorboardX's SummaryWriter, imported without PyTorch: tensorboardX imports torch whenever it is installed
    (only to accept torch tensors), which costs a training process ~2 s of start-up; scalars and numpy images need
    none of it. A process that already imported torch keeps it."""
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError, which tensorboardX handles
    try:
        from tensorboardX import SummaryWriter
    finally:
        if hide:
            del sys.modules["torch"]
    return SummaryWriter
