"""Processing records: every restored image and video gets OUT/x.restore.json (hashes, model, settings, versions,
time), written only when the output is complete; restoring again with a record's settings gives the same output
bit for bit (an image and a clip); --no-record writes none; unusable records and other weights exit 2."""
import hashlib
import json
import shlex

import numpy as np
import pytest
from PIL import Image

import restorenet_jax
from restorenet_jax.apps import restore
from restorenet_jax.bench.synthetic_clip import dark_clip
from restorenet_jax.inference import footage, record, video
from restorenet_jax.models import model_dir
from tests.tiny_model import gentle_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")

H, W = 24, 32


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return gentle_checkpoint(tmp_path_factory)


@pytest.fixture(autouse=True)
def loaded_once(monkeypatch):
    """Each engine is loaded (and its programs compiled) once for the whole file: the runs differ in settings."""
    from restorenet_jax.inference import engines

    real = engines.load_engine

    def load(path, engine="auto", **kw):
        key = (str(path), engine, tuple(sorted(kw.items())))
        if key not in _ENGINES:
            _ENGINES[key] = real(path, engine, **kw)
        return _ENGINES[key]

    monkeypatch.setattr(engines, "load_engine", load)


_ENGINES: dict = {}


@pytest.fixture(scope="module")
def gray(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "night.png"
    rng = np.random.default_rng(0)
    Image.fromarray((np.linspace(20, 200, W)[None, :] + 30 * rng.random((H, W))).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "dark.mp4"
    c = dark_clip(n=6, h=H, w=W, seed=5)
    with video.VideoWriter(path, (W, H), 10, quality=9) as w:
        for f in c.noisy:
            w.write(f)
    return path


def _run(ckpt, *args):
    return restore.main(["--checkpoint", str(ckpt), "--engine", "jax", "-q", *map(str, args)])


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_image_record_says_what_was_done_and_repeats_bit_for_bit(ckpt, gray, tmp_path, capsys):
    out = tmp_path / "out"
    # Settings that change the pixels (tiling) and the file (gray kept as RGB): the record must carry them.
    assert _run(ckpt, gray, "-o", out, "--tile", 16, "--overlap", 4, "--gray-as-rgb") == 0
    assert sorted(p.name for p in out.iterdir()) == ["night.png", "night.png.restore.json"]  # no temporary left
    rec = json.loads((out / "night.png.restore.json").read_text())
    assert rec["kind"] == "image" and rec["record_version"] == record.VERSION
    assert rec["input"]["sha256"] == _sha(gray) and rec["input"]["path"] == str(gray.resolve())
    assert rec["output"]["sha256"] == _sha(out / "night.png")
    assert rec["model"]["path"] == str(ckpt.resolve()) and rec["model"]["arch"]["kind"] == "restorenet"
    assert rec["model"]["params_fingerprint"] == footage.params_fingerprint(model_dir.load_model_dir(ckpt)[1])
    assert (rec["engine"], rec["precision"]) == ("jax", "fp32")
    assert rec["software"]["restorenet_jax"] == restorenet_jax.__version__ and "numpy" in rec["software"]
    s = rec["settings"]
    assert (s["tile"], s["overlap"], s["gray_as_rgb"], s["tlc"]) == (16, 4, True, False)
    assert rec["seconds"] >= 0 and rec["started"] <= rec["finished"] and "--tile" in rec["argv"]

    capsys.readouterr()
    assert restore.main(["--from-record", str(out / "night.png.restore.json"), str(gray), "-o", str(tmp_path / "again"),
                         "-q"]) == 0
    assert (tmp_path / "again" / "night.png").read_bytes() == (out / "night.png").read_bytes()
    assert "bit for bit" in capsys.readouterr().err
    # The explicit command in the record parses to the same settings.
    cmd = shlex.split(rec["repeat_explicit"])[3:]
    args = restore.build_parser().parse_args(cmd)
    assert {k: getattr(args, k) for k in s} == s
    # Without the recorded settings the output is another one: the test above could fail.
    assert _run(ckpt, gray, "-o", tmp_path / "plain", "--no-record") == 0
    assert (tmp_path / "plain" / "night.png").read_bytes() != (out / "night.png").read_bytes()
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["night.png"]  # --no-record


def test_clip_record_and_repeat_give_the_same_video(ckpt, clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(ckpt, clip, "-o", out, "--temporal", 1, "--batch", 2, "--segment-frames", 4) == 0
    rec = json.loads((out / "dark.mp4.restore.json").read_text())
    assert rec["kind"] == "video" and rec["input"]["sha256"] == _sha(clip)
    assert rec["output"]["sha256"] == _sha(out / "dark.mp4")
    assert rec["video"] == {"frames": 6, "resumed_frames": 0, "audio": "none", "temporal_k": 1}
    assert (rec["settings"]["temporal"], rec["settings"]["batch"], rec["settings"]["segment_frames"]) == (1, 2, 4)

    capsys.readouterr()
    again = tmp_path / "again"
    assert restore.main(["--from-record", str(out / "dark.mp4.restore.json"), str(clip), "-o", str(again), "-q"]) == 0
    assert "bit for bit" in capsys.readouterr().err
    assert (again / "dark.mp4").read_bytes() == (out / "dark.mp4").read_bytes()
    _, a = video.open_video(out / "dark.mp4")
    _, b = video.open_video(again / "dark.mp4")
    a, b = np.stack(list(a)), np.stack(list(b))
    assert a.shape == (6, H, W, 3) and np.array_equal(a, b)
    # Single-frame restoration of the same clip gives other frames: the record's temporal radius mattered.
    assert _run(ckpt, clip, "-o", tmp_path / "single", "--temporal", 0, "--batch", 2, "--segment-frames", 4) == 0
    _, c = video.open_video(tmp_path / "single" / "dark.mp4")
    assert not np.array_equal(a, np.stack(list(c)))


def test_unusable_record_or_other_weights_exit_2(ckpt, gray, tmp_path, capsys):
    bad = tmp_path / "bad.restore.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit) as e:
        restore.main(["--from-record", str(bad), str(gray), "-o", str(tmp_path / "x")])
    assert e.value.code == 2 and "is not JSON" in capsys.readouterr().err

    assert _run(ckpt, gray, "-o", tmp_path / "out") == 0
    rec_path = tmp_path / "out" / "night.png.restore.json"
    rec = json.loads(rec_path.read_text())
    rec["model"]["params_fingerprint"] = "0" * 16  # as if the checkpoint had been retrained since
    rec_path.write_text(json.dumps(rec))
    with pytest.raises(SystemExit) as e:
        restore.main(["--from-record", str(rec_path), str(gray), "-o", str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "not 0000000000000000 as recorded" in err and "Traceback" not in err
    assert not (tmp_path / "y").exists()


def test_record_is_written_atomically(tmp_path, monkeypatch):
    target = tmp_path / "a.png.restore.json"
    target.write_text('{"old": true}')

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(record.json, "dump", crash)
    with pytest.raises(OSError):
        record.write_json_atomic(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}  # the old record stays whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png.restore.json"]  # no temporary left
