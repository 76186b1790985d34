"""Temporal restoration: alignment recovers a known shake and moving patch, fusion cuts static noise by ~sqrt(n)
and does not ghost a moving object, and a fused stream resumed with its k context frames equals the whole run."""
import numpy as np

from restorenet_jax.bench.synthetic_clip import dark_clip
from restorenet_jax.inference import alignment, temporal


def test_global_shift_and_moving_patch_are_recovered():
    c = dark_clip(n=2, h=80, w=112, seed=3, speed=4.0)
    g0, g1 = alignment.flow_image(c.noisy[0]), alignment.flow_image(c.noisy[1])
    flow = alignment.Aligner().flow(g0, g1)
    static = ~(c.moving[0] | c.moving[1])
    assert np.allclose(np.median(flow[static], axis=0), -c.shifts[1], atol=0.3)
    # Inside the object (pasted after the shake, so it moves by its speed alone) the flow follows it.
    inside = c.moving[0] & c.moving[1]
    assert np.median(flow[inside][:, 0]) - np.median(flow[static][:, 0]) > 1.0  # towards the motion (+4 px)


def test_static_noise_falls_by_sqrt_n_and_moving_object_is_not_ghosted():
    c = dark_clip(n=5, h=80, w=112, seed=1, shake=0.0, speed=4.0)
    fused = temporal.fuse_clip(c.noisy, 2)[2]
    static = ~c.moving.any(axis=0)
    factor = np.std((c.noisy[2] - c.clean[2])[static]) / np.std((fused - c.clean[2])[static])
    assert 0.8 * np.sqrt(5) < factor < 1.6 * np.sqrt(5)
    obj = c.moving[2]
    err_single = np.mean((c.noisy[2] - c.clean[2])[obj] ** 2)
    err_fused = np.mean((fused - c.clean[2])[obj] ** 2)
    assert err_fused <= err_single  # a ghost of the background would be far worse than the noise


def test_resumed_stream_with_context_equals_uninterrupted():
    c = dark_clip(n=8, h=40, w=56, seed=2)
    frames = np.round(c.noisy * 255).astype(np.uint8)
    whole = list(temporal.fuse_stream(frames, 2))
    resumed = list(temporal.fuse_stream(frames[5 - 2:], 2, drop=2))
    assert len(resumed) == 3 and all(np.array_equal(a, b) for a, b in zip(whole[5:], resumed))


def test_temporal_footage_job_crashed_and_resumed_equals_uninterrupted(tmp_path):
    import pytest

    from restorenet_jax.inference import footage, video

    c = dark_clip(n=14, h=40, w=56, seed=4)
    src = tmp_path / "dark.mp4"
    with video.VideoWriter(src, (56, 40), 10, quality=9) as w:
        for f in c.noisy:
            w.write(f)
    opts = footage.JobOptions(batch=2, segment_frames=4, progress=False, temporal=2)
    whole = tmp_path / "whole.mp4"
    assert footage.restore_footage(lambda xb: xb, src, whole, opts).temporal == 2
    calls = []

    def crashing(xb):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return xb

    dst = tmp_path / "resumed.mp4"
    with pytest.raises(KeyboardInterrupt):
        footage.restore_footage(crashing, src, dst, opts)
    result = footage.restore_footage(lambda xb: xb, src, dst, opts)
    assert result.resumed_frames > 0 and result.frames == 14
    _, a = video.open_video(whole)
    _, b = video.open_video(dst)
    a, b = np.stack(list(a)), np.stack(list(b))
    assert a.shape == b.shape and np.array_equal(a, b)
