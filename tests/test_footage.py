"""Footage jobs: batched frames, a job killed with SIGKILL and rerun ends with exactly the input's frames and rate,
the audio track survives, a live stream over loopback is recorded for --duration seconds."""
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from restorenet_jax.apps import restore
from restorenet_jax.inference import footage, video
from tests.tiny_model import gentle_checkpoint

# imageio-ffmpeg starts ffmpeg with subprocess (fork + exec at once), which JAX's fork warning does not concern.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")

ROOT = Path(__file__).resolve().parents[1]
W, H = 56, 40  # the size of the restore CLI's video test: the tiny model's programs are shared
NTSC = Fraction(30000, 1001)


def _ffmpeg(*args, **kw):
    import imageio_ffmpeg

    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *map(str, args)],
                          check=True, **kw)


def _patterns(n, seed=0):
    """n uint8 frames of random colour blocks of 8x8 pixels (whole 4:2:0 chroma blocks): every frame unlike its
    neighbours, so a lost or repeated frame shows as a shift."""
    blocks = np.random.default_rng(seed).integers(0, 256, (n, H // 8, W // 8, 3), dtype=np.uint8)
    return blocks.repeat(8, axis=1).repeat(8, axis=2)


def _make_video(path, frames, rate=NTSC, audio=True):
    """An H.264 video of `frames` at `rate`, with a sine audio track as long as the video if `audio`."""
    silent = path.with_name("silent_" + path.name) if audio else path
    with video.VideoWriter(silent, (W, H), rate, quality=9) as w:
        for f in frames:
            w.write_rgb8(f)
    if audio:
        seconds = float(len(frames) / rate)
        _ffmpeg("-i", silent, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", f"{seconds:.4f}",
                "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", path)
        silent.unlink()
    return path


def _decode(path):
    info, frames = video.open_video(path)
    return info, np.stack(list(frames)).astype(np.float32)


def _assert_frames_in_order(got, ref):
    """Frame i of `got` is nearest to frame i of `ref` among i-1, i, i+1: nothing lost, repeated or reordered."""
    assert len(got) == len(ref)
    for i, g in enumerate(got):
        err = {j: float(np.mean((g - ref[j]) ** 2)) for j in (i - 1, i, i + 1) if 0 <= j < len(ref)}
        assert min(err, key=err.get) == i, (i, err)


def _copy_fn(xb):
    return xb  # a model that restores nothing: the output must be the input, frame for frame


# --- the job itself, with a stand-in model (no compile) ----------------------------------------------------------

def test_batches_resume_after_a_crash_and_audio_survives(tmp_path):
    frames = _patterns(23, seed=1)
    src = _make_video(tmp_path / "cam.mp4", frames)
    dst = tmp_path / "out" / "cam.mp4"
    dst.parent.mkdir()
    shapes, calls = [], []

    def crashing(xb):
        shapes.append(xb.shape)
        if len(shapes) == 5:
            # A crash while batch 5 computes: batches 1-3 are written (batch 4 waits on the device), 9 frames,
            # so two segments of 4 are kept and the 9th frame is redone.
            raise KeyboardInterrupt
        return xb

    opts = footage.JobOptions(batch=3, segment_frames=4, progress=False)
    with pytest.raises(KeyboardInterrupt):
        footage.restore_footage(crashing, src, dst, opts)
    assert set(shapes) == {(3, H, W, 3)}
    work = footage.work_dir(dst)
    manifest = json.loads((work / "manifest.json").read_text())
    assert [s["frames"] for s in manifest["segments"]] == [4, 4]
    assert not dst.exists()  # nothing under the output's name (not even an empty file) until the video is complete
    assert not list(work.glob("*.part.mp4"))

    def counting(xb):
        calls.append(xb.shape)
        return xb

    result = footage.restore_footage(counting, src, dst, opts)
    assert result.frames == 23 and result.resumed_frames == 8 and result.audio == "copied"
    assert set(calls) == {(3, H, W, 3)} and len(calls) == 5  # 15 frames left: 5 batches, the last one padded
    assert not work.exists()
    info, got = _decode(dst)
    assert info.size == (W, H) and info.rate == NTSC
    _assert_frames_in_order(got, frames.astype(np.float32))
    assert np.mean(np.abs(got - frames)) < 8  # the frames themselves, up to two H.264 encodes (unrelated: ~85)
    assert video._has_audio(str(dst))


def test_existing_output_and_a_foreign_job_are_not_replaced(tmp_path):
    src = _make_video(tmp_path / "a.mp4", _patterns(6), audio=False)
    dst = tmp_path / "a_out.mp4"
    dst.write_bytes(b"someone else's recording")
    opts = footage.JobOptions(segment_frames=2, progress=False)
    with pytest.raises(FileExistsError, match="already exists"):
        footage.restore_footage(_copy_fn, src, dst, opts)
    assert dst.read_bytes() == b"someone else's recording" and not footage.work_dir(dst).exists()

    # An unfinished job made with other settings is neither continued nor silently thrown away.
    dst.unlink()
    with pytest.raises(KeyboardInterrupt):
        footage.restore_footage(lambda x: (_ for _ in ()).throw(KeyboardInterrupt), src, dst, opts)
    other = footage.JobOptions(segment_frames=2, progress=False, settings={"model": "another"})
    with pytest.raises(footage.FootageError, match="another input, model or settings"):
        footage.restore_footage(_copy_fn, src, dst, other)
    assert footage.restore_footage(_copy_fn, src, dst, dataclasses.replace(other, overwrite=True)).frames == 6


def test_a_job_running_elsewhere_is_left_alone(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    src = _make_video(tmp_path / "c.mp4", _patterns(4), audio=False)
    dst = tmp_path / "c_out.mp4"
    work = footage.work_dir(dst)
    work.mkdir()
    with open(work / "lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running job holds it
        with pytest.raises(footage.FootageError, match="another restore is working on .*c_out.mp4"):
            footage.restore_footage(_copy_fn, src, dst, footage.JobOptions(progress=False))
    assert work.is_dir() and not dst.exists()


def test_duration_limits_a_file_and_the_progress_bar_shows_rate_and_eta(tmp_path, capsys):
    src = _make_video(tmp_path / "b.mp4", _patterns(30), rate=Fraction(10))
    dst = tmp_path / "b_out.mp4"
    result = footage.restore_footage(_copy_fn, src, dst, footage.JobOptions(batch=4, duration=1.5, segment_frames=7))
    assert result.frames == 15 and video._has_audio(str(dst))
    assert imageio_frames(dst) == 15 and video.open_video(dst)[0].rate == 10  # segments of 7, 7 and 1 frames
    err = capsys.readouterr().err
    assert "frame/s" in err and "/15 [" in err and "<" in err  # rate, total and time left


def test_progress_bar_total_is_the_real_frame_count(tmp_path, capsys):
    # 59 frames whose audio track runs on: the container's duration x rate says 60, the bar must say 59.
    silent = _make_video(tmp_path / "silent.mp4", _patterns(59), rate=Fraction(30), audio=False)
    src = tmp_path / "longer_audio.mp4"
    _ffmpeg("-i", silent, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", "2.2", "-map", "0:v",
            "-map", "1:a", "-c:v", "copy", "-c:a", "aac", src)
    info, frames = video.open_video(src)
    frames.close()
    assert info.frames_estimate > 59  # the case at hand (else this test shows nothing)
    assert video.count_frames(src) == 59 and video.count_frames("udp://127.0.0.1:9") is None
    result = footage.restore_footage(_copy_fn, src, tmp_path / "out.mp4", footage.JobOptions(batch=4))
    err = capsys.readouterr().err
    assert result.frames == 59 and "0/59 [" in err and "/60 [" not in err


def imageio_frames(path):
    import imageio_ffmpeg

    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


@pytest.mark.parametrize("ext, out_ext", [(".mkv", ".mkv"), (".avi", ".avi"), (".avi", ".mp4"), (".mov", ".mp4")])
def test_containers_keep_frame_count_rate_and_audio(tmp_path, ext, out_ext):
    # 22 frames in segments of 7, 7, 7 and 1; MP3 in AVI, PCM in MOV (copied or re-encoded as the output needs).
    src = tmp_path / f"in{ext}"
    audio = ["-c:a", "pcm_s16le"] if ext == ".mov" else []
    _ffmpeg("-f", "lavfi", "-i", f"testsrc=size={W}x{H}:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=16000",
            "-t", "0.88", "-c:v", "libx264", "-pix_fmt", "yuv420p", *audio, src)
    dst = tmp_path / f"out{out_ext}"
    result = footage.restore_footage(_copy_fn, src, dst, footage.JobOptions(segment_frames=7, progress=False))
    assert result.frames == 22 == imageio_frames(dst) == imageio_frames(src)
    assert video.open_video(dst)[0].rate == 25 and result.audio in ("copied", "aac") and video._has_audio(str(dst))


@pytest.mark.parametrize("fps, rate", [(29.97, NTSC), (23.98, Fraction(24000, 1001)), (59.94, Fraction(60000, 1001)),
                                       (25.0, Fraction(25)), (12.5, Fraction(25, 2)), (7.5, Fraction(15, 2))])
def test_exact_rate(fps, rate):
    assert video.exact_rate(fps) == rate


def test_stream_urls_and_their_output_names():
    assert video.is_stream_url("rtsp://user:pw@cam.local:554/live?x=1") and not video.is_stream_url("c:/a.mp4")
    assert footage.stream_stem("udp://127.0.0.1:5000") == "udp_127-0-0-1_5000"
    assert footage.stream_stem("rtsp://user:pw@cam.local:554/live?x=1") == "cam-local_554_live"


def test_unreadable_source_is_one_clear_line_and_leaves_nothing(tmp_path):
    src = tmp_path / "notes.mp4"
    src.write_text("not a video")
    dst = tmp_path / "notes_out.mp4"
    with pytest.raises(video.UnreadableImage, match=r"^cannot open video: .*Invalid data"):
        footage.restore_footage(_copy_fn, src, dst, footage.JobOptions(progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


@pytest.mark.parametrize("bad", [["--batch", "0"], ["--segment-frames", "0"], ["--duration", "-2"]])
def test_bad_video_options_exit_2(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as e:
        restore.main(["--checkpoint", str(tmp_path), "udp://127.0.0.1:9", "-o", str(tmp_path / "o"), *bad])
    assert e.value.code == 2 and bad[0] in capsys.readouterr().err


def test_frames_fn_uses_the_batched_forward_unless_tiling():
    class Model:
        def restore_batch(self, xb):
            return xb * 0 + 1

    per_frame = restore.make_frames_fn(Model(), lambda x: x * 0 + 2, tile=0)
    tiled = restore.make_frames_fn(Model(), lambda x: x * 0 + 2, tile=16)
    x = np.zeros((3, 4, 5, 3), np.float32)
    assert np.all(np.asarray(per_frame(x)) == 1) and np.all(tiled(x) == 2) and tiled(x).shape == x.shape


# --- the command, with a tiny model ---------------------------------------------------------------------------------

def _command(ckpt, *args):
    return [sys.executable, "-m", "restorenet_jax.restore", "--checkpoint", str(ckpt), "-q", *map(str, args)]


def test_sigkill_mid_video_then_rerun_gives_every_frame_once(tmp_path_factory, tmp_path, monkeypatch):
    ckpt = gentle_checkpoint(tmp_path_factory)  # near-identity: restored frames still show their blocks
    frames = _patterns(90, seed=2)
    src = _make_video(tmp_path / "clip.mp4", frames)
    out = tmp_path / "out"
    args = [src, "--output", out, "--batch", "2", "--segment-frames", "6"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(_command(ckpt, *args), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    manifest = out / ".clip.mp4.parts" / "manifest.json"
    deadline = time.time() + 120
    kept = 0
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists():
            kept = sum(s["frames"] for s in json.loads(manifest.read_text())["segments"])
            if kept >= 12:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"finished before it could be killed: {proc.stderr.read()[-2000:]}"
    kept = sum(s["frames"] for s in json.loads(manifest.read_text())["segments"])
    assert 12 <= kept < 90
    assert not (out / "clip.mp4").exists()  # only the hidden parts folder: no empty video beside it

    restored = []
    real = restore.make_frames_fn

    def counting(*a, **k):
        fn = real(*a, **k)
        return lambda xb: restored.append(len(xb)) or fn(xb)

    monkeypatch.setattr(restore, "make_frames_fn", counting)
    assert restore.main(_command(ckpt, *args)[3:]) == 0  # the same command, in this process
    assert sum(restored) == 90 - kept + (90 - kept) % 2  # only the missing frames (the last batch padded)
    assert not manifest.parent.exists()
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "clip.mp4.restore.json"]
    assert json.loads((out / "clip.mp4.restore.json").read_text())["video"]["resumed_frames"] == kept
    info, got = _decode(out / "clip.mp4")
    assert imageio_frames(out / "clip.mp4") == 90 and len(got) == 90
    assert info.rate == NTSC and info.size == (W, H)
    _assert_frames_in_order(got, frames.astype(np.float32))
    assert video._has_audio(str(out / "clip.mp4"))


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_stream_over_loopback_for_duration(tmp_path_factory, tmp_path):
    import imageio_ffmpeg

    ckpt = gentle_checkpoint(tmp_path_factory)
    port = _free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    sender = subprocess.Popen(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
         f"testsrc=size={W}x{H}:rate=25", "-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-tune",
         "zerolatency", "-g", "5", "-pix_fmt", "yuv420p", "-f", "mpegts", f"{url}?pkt_size=1316"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = tmp_path / "out"
        assert restore.main(["--checkpoint", str(ckpt), url, "--output", str(out), "--duration", "2",
                             "--batch", "2", "-q"]) == 0
    finally:
        sender.kill()
        sender.wait()
    dst = out / f"udp_127-0-0-1_{port}.mp4"
    info, got = _decode(dst)
    assert len(got) == 50 == imageio_frames(dst)  # 2 s at 25 frames/s
    assert info.rate == 25 and info.size == (W, H)
    assert not footage.work_dir(dst).exists()
