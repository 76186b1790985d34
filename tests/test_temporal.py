"""Temporal restoration: alignment recovers a known camera shift, shake and a moving patch's displacement, fusion
cuts static noise by ~sqrt(n) and does not ghost a moving object, and a fused stream resumed with its k context
frames equals the whole run."""
import cv2
import numpy as np
import pytest

from restorenet_jax.bench.synthetic_clip import dark_clip, scene
from restorenet_jax.inference import alignment, temporal


@pytest.mark.parametrize("dx, dy", [(3.0, -2.0), (0.5, 1.25), (-5.5, 0.0)])
def test_known_camera_shift_is_recovered(dx, dy):
    img = scene(96, 128, seed=7)
    moved = cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), (128, 96),  # moved(x) = img(x + d)
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    ref, other = alignment.flow_image(img), alignment.flow_image(moved)
    flow = alignment.Aligner().flow(ref, other)
    inner = (slice(12, -12), slice(12, -12))  # away from the reflected border
    assert np.allclose(np.median(flow[inner].reshape(-1, 2), axis=0), (-dx, -dy), atol=0.2)  # ref(x) = moved(x - d)
    camera = alignment.global_motion(flow)
    assert np.allclose(camera, (-dx, -dy), atol=0.2)


def test_camera_shake_is_given_to_the_noisy_background_and_a_moving_patch_keeps_its_flow():
    c = dark_clip(n=2, h=120, w=160, seed=6, speed=5.0)
    g0, g1 = alignment.flow_image(c.noisy[0]), alignment.flow_image(c.noisy[1])
    static = ~(c.moving[0] | c.moving[1])
    static[:8], static[-8:], static[:, :8], static[:, -8:] = False, False, False, False  # the frame edge
    snapped = alignment.Aligner("medium").flow(g0, g1)
    raw = alignment.Aligner("medium", global_motion=False).flow(g0, g1)
    truth = -c.shifts[1]
    assert np.allclose(alignment.global_motion(raw), truth, atol=0.15)
    # The flow's scatter on the background is gone: most of it within 0.1 px of the true shake (~0.7 before).
    within = [np.mean(np.abs(f[static] - truth).max(axis=-1) < 0.1) for f in (snapped, raw)]
    assert within[0] > 0.85 and within[0] > within[1] + 0.1
    assert np.median(snapped[_patch_core(c)][:, 0]) > 3.0  # the patch (moving by 5 px) is not snapped


def _patch_core(c):
    """Pixels of the moving patch in frame 0, two pixels in from its edges (the flow there is the patch's)."""
    return cv2.erode(c.moving[0].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_shake_and_moving_patch_are_recovered(seed):
    c = dark_clip(n=2, h=80, w=112, seed=seed, speed=4.0)
    g0, g1 = alignment.flow_image(c.noisy[0]), alignment.flow_image(c.noisy[1])
    static = ~(c.moving[0] | c.moving[1])
    core = _patch_core(c)
    # The patch is pasted after the shake: it moves by (speed, 0) whatever the camera did.
    medium = alignment.Aligner("medium").flow(g0, g1)
    assert np.allclose(np.median(medium[static], axis=0), -c.shifts[1], atol=0.3)
    assert np.allclose(np.median(medium[core], axis=0), (4.0, 0.0), atol=0.8)
    # The default (fastest) preset finds the shake as well and follows the patch at least most of the way (it
    # under-estimates a 4-pixel motion of a 20x28 patch by up to ~1.7 px; fusion then rejects what stays misaligned).
    fast = alignment.Aligner().flow(g0, g1)
    assert np.allclose(np.median(fast[static], axis=0), -c.shifts[1], atol=0.3)
    assert 2.0 < np.median(fast[core][:, 0]) < 4.5 and abs(np.median(fast[core][:, 1])) < 1.0


def test_static_noise_falls_by_sqrt_n_and_moving_object_is_not_ghosted():
    c = dark_clip(n=5, h=80, w=112, seed=1, shake=0.0, speed=4.0)
    fused = temporal.fuse_clip(c.noisy, 2)[2]
    static = ~c.moving.any(axis=0)
    factor = np.std((c.noisy[2] - c.clean[2])[static]) / np.std((fused - c.clean[2])[static])
    assert 0.8 * np.sqrt(5) < factor < 1.1 * np.sqrt(5)  # five frames, a few static pixels given less weight
    obj = c.moving[2]
    err_single = np.mean((c.noisy[2] - c.clean[2])[obj] ** 2)
    err_fused = np.mean((fused - c.clean[2])[obj] ** 2)
    err_plain = np.mean((c.noisy.mean(axis=0) - c.clean[2])[obj] ** 2)  # averaging without alignment or weights
    assert err_plain > 3 * err_single  # what a ghost costs: the check below can fail
    assert err_fused <= err_single  # the object is not ghosted


def _fused_with_noise(t=2):
    c = dark_clip(n=5, h=80, w=112, seed=1, shake=0.0, speed=4.0)  # shot + read noise: brighter parts are noisier
    fused, var = list(temporal.fuse_stream(c.noisy, 2, noise=True))[t]
    static = ~c.moving.any(axis=0)
    static[:4], static[-4:], static[:, :4], static[:, -4:] = False, False, False, False
    return c.clean[t], fused, var, static, c.moving[t]


def test_fused_noise_variance_is_measured_where_it_is():
    clean, fused, var, static, moving = _fused_with_noise()
    err2 = np.mean(np.square(fused - clean), axis=-1)
    level = clean.mean(axis=-1)
    lo, hi = np.quantile(level[static], [0.3, 0.7])
    dark, bright = static & (level < lo), static & (level > hi)
    for part in (static, dark, bright):
        assert 0.7 < np.mean(var[part]) / np.mean(err2[part]) < 1.4
    assert np.mean(var[bright]) > 1.5 * np.mean(var[dark])  # measured locally, not one level for the frame
    assert np.median(var[moving]) > 2 * np.median(var[static])  # the unfused moving object keeps its noise


def test_detail_an_oversmoothing_model_removed_comes_back_and_a_good_output_stays():
    clean, fused, var, static, _ = _fused_with_noise()
    box = temporal.FusionOptions().detail_box

    def err(x):
        return np.mean(np.square(x - clean)[static])

    smoothed = cv2.GaussianBlur(fused, (0, 0), 1.5)  # removes the noise and the scene's texture with it
    assert err(temporal.keep_detail(fused, smoothed, var, box)) < 0.7 * err(smoothed)
    # A model that removed exactly the noise: its output is all but kept.
    assert err(temporal.keep_detail(fused, clean, var, box)) < 0.25 * err(fused)
    assert np.array_equal(temporal.keep_detail(fused, smoothed, None, box), np.clip(smoothed, 0, 1))


def test_a_neighbour_across_a_scene_cut_gets_no_weight():
    a, b = dark_clip(n=2, h=48, w=64, seed=1, shake=0.0), dark_clip(n=2, h=48, w=64, seed=9, brightness=0.6)
    frames = np.concatenate([a.noisy, b.noisy])  # the scene changes between frames 1 and 2
    fused, var = list(temporal.fuse_stream(frames, 1, noise=True))[1]  # frame 1 with frames 0 and 2
    err = np.mean(np.square(fused - a.clean[1]))
    assert err < 0.75 * np.mean(np.square(a.noisy[1] - a.clean[1]))  # frame 0 counted: the noise fell
    assert err < 0.25 * np.mean(np.square(0.5 * (a.clean[1] + b.clean[0]) - a.clean[1]))  # frame 2 did not
    assert var is not None
    # No neighbour at all (a one-frame video): no noise measured, and the model's output stands.
    [(alone, none)] = list(temporal.fuse_stream(a.noisy[:1], 2, noise=True))
    assert none is None and np.array_equal(alone, a.noisy[0])


def test_restored_frames_are_fused_again_after_the_model():
    c = dark_clip(n=7, h=80, w=112, seed=1, shake=0.0, speed=4.0)
    static = ~c.moving.any(axis=0)
    before_model = temporal.fuse_clip(c.noisy, 2)
    restored = temporal.restore_clip(lambda x: x, c.noisy, 2, batch=3)  # an identity "model"
    after = temporal.post_radius(2)
    assert after >= 1
    expected = np.clip(temporal.fuse_clip(np.clip(before_model, 0, 1), after, temporal.FusionOptions().after_model()),
                       0, 1)
    np.testing.assert_allclose(restored, expected, atol=1e-6)
    err_before = np.std((before_model[3] - c.clean[3])[static])
    # Windows of an identity model overlap (their noise is correlated): less gain than a real model's, yet a gain.
    assert np.std((restored[3] - c.clean[3])[static]) < 0.97 * err_before


def test_every_frame_of_a_long_enough_clip_gets_2k_neighbours():
    assert [temporal.window(t, 2, 7) for t in range(7)] == [(0, 4), (0, 4), (0, 4), (1, 5), (2, 6), (2, 6), (2, 6)]
    assert [temporal.window(t, 2, 3) for t in range(3)] == [(0, 2)] * 3  # shorter than 2k+1: the whole clip
    assert temporal.window(0, 2, None) == (0, 4) and temporal.window(5, 2, None) == (3, 7)


@pytest.mark.parametrize("start", [1, 5, 8])  # the start, the middle, the last k frames (window shifted back)
def test_resumed_stream_with_context_equals_uninterrupted(start):
    c = dark_clip(n=10, h=40, w=56, seed=2)
    frames = np.round(c.noisy * 255).astype(np.uint8)
    whole = list(temporal.fuse_stream(frames, 2))
    context = min(start, 4)  # 2k frames before the first new one
    resumed = list(temporal.fuse_stream(frames[start - context:], 2, drop=context))
    assert len(resumed) == 10 - start and all(np.array_equal(a, b) for a, b in zip(whole[start:], resumed))
    if start == 8:  # k frames of context are too few near the end: the shifted window reaches 2k back
        short = list(temporal.fuse_stream(frames[start - 2:], 2, drop=2))
        assert not np.array_equal(short[0], whole[start])


def test_temporal_footage_job_crashed_and_resumed_equals_uninterrupted(tmp_path):
    from restorenet_jax.inference import footage, video

    c = dark_clip(n=20, h=40, w=56, seed=4)
    src = tmp_path / "dark.mp4"
    with video.VideoWriter(src, (56, 40), 10, quality=9) as w:
        for f in c.noisy:
            w.write(f)
    # Radius 4: a resumed job needs frames of context for both fusions (before and after the model).
    opts = footage.JobOptions(batch=2, segment_frames=4, progress=False, temporal=4)
    whole = tmp_path / "whole.mp4"
    assert footage.restore_footage(lambda xb: xb, src, whole, opts).temporal == 4
    calls = []

    def crashing(xb):
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        return xb

    dst = tmp_path / "resumed.mp4"
    with pytest.raises(KeyboardInterrupt):
        footage.restore_footage(crashing, src, dst, opts)
    result = footage.restore_footage(lambda xb: xb, src, dst, opts)
    assert result.resumed_frames >= 8 and result.frames == 20  # both fusions need context
    _, a = video.open_video(whole)
    _, b = video.open_video(dst)
    a, b = np.stack(list(a)), np.stack(list(b))
    assert a.shape == b.shape and np.array_equal(a, b)
