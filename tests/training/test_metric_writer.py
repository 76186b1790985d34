"""The training metric writer: metrics.jsonl and TensorBoard events, without importing PyTorch."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_writes_jsonl_and_events_without_importing_torch(tmp_path):
    # A fresh interpreter: the suite's own process has imported torch for the conversion tests long before.
    code = ("import sys, numpy as np\n"
            "from restorenet_jax.training.metric_writer import MetricWriter\n"
            f"w = MetricWriter({str(tmp_path)!r})\n"
            "w.scalars(3, {'loss': 0.5})\n"
            "w.image(3, 'sample', np.zeros((4, 4, 3), np.float32))\n"
            "w.close()\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"step": 3, "split": "train", "loss": 0.5}
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "samples" / "sample_0000003.png").is_file()
