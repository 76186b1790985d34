"""Settings of the restoration-quality benchmark on synthetic dark footage (`python -m restorenet_jax.bench.footage`).

    get_config()          the full benchmark: 240x320 clips of 12 frames, every noise setting (a CPU run of minutes)
    get_config('quick')   tiny clips, two settings, one strength per filter (the test's scale)

Scenes are made from scikit-image photos that training never sees (the embedded set's held-out photos and others);
noise settings cover each noise family of the project plus one the training never sees (`held_out`). Strengths of
the ffmpeg denoisers are option strings of each filter; each filter's best strength per setting is kept.
"""
import ml_collections

# Background photos (scikit-image wheel, offline). chelsea and coffee are the embedded set's held-out photos; camera
# (grey, shown as RGB like a monochrome night camera) is in no training set.
SCENES = ("chelsea", "coffee", "camera")


def _settings():
    """Noise settings: name -> (noise family, motion, family parameters). See bench/footage_noise.py."""
    s = ml_collections.ConfigDict()
    # Dark scene with the camera's gain: shot + read noise in linear space (the demo model's training family),
    # exposure fixed per setting so every clip is equally hard; read noise from the shot level (Brooks et al. fit).
    s.low_light = dict(family="low_light", motion="shake_object", exposure=0.3, shot=0.002)
    s.low_light_static = dict(family="low_light", motion="static", exposure=0.3, shot=0.002)
    # Surveillance camera: raw-mosaic noise (correlated, coloured), resolution drop, chroma blotches, JPEG blocks;
    # per-clip numbers drawn from configs/degradations.py's 'cctv' ranges.
    s.cctv = dict(family="cctv", motion="shake_object")
    s.gaussian = dict(family="gaussian", motion="shake_object", sigma=25.0 / 255.0)
    s.poisson = dict(family="poisson", motion="shake_object", peak=30.0)
    # Held out (no training config makes it): full-resolution RGGB mosaic shot + read noise in the dark with gain,
    # bilinear demosaic (spatially correlated, coloured), then real H.264 (libx264, 4:2:0, inter frames) at a CRF.
    s.dark_h264 = dict(family="dark_h264", motion="shake_object", exposure=0.2, shot=0.003, crf=26, held_out=True)
    return s


def _strengths():
    """ffmpeg filter -> option strings tried (weak to strong). Temporal filters see the whole clip.

    The grids reach each filter's strong end: on these clips (input ~18-20 dB) nlmeans gains ~0.3 dB at s=10 but
    ~8 dB at s=20-30, so a grid of default-like strengths would understate ffmpeg badly."""
    f = ml_collections.ConfigDict()
    f.hqdn3d = ("8:6:12:9", "32:24:48:36", "64:48:96:72")  # luma/chroma spatial, luma/chroma temporal
    f.atadenoise = tuple(f"0a={a}:0b={b}:1a={a}:1b={b}:2a={a}:2b={b}:s=9" for a, b in
                         ((0.1, 0.2), (0.3, 1.0), (0.3, 5.0)))  # thresholds per plane (a <= 0.3), 9 frames
    f.nlmeans = ("s=10", "s=20", "s=30")  # spatial non-local means (s <= 30), patch 7, research 15 (defaults)
    f.fftdnoiz = tuple(f"sigma={s}:prev=1:next=1" for s in (16, 48, 100))  # 3-D FFT over +-1 frame (sigma <= 100)
    # bm3d: one-stage (basic estimate) with the filter's default single-block groups: grouping 8 blocks costs ~4x
    # the time (0.5 s per 240x320 frame here), too slow for this run.
    f.bm3d = tuple(f"sigma={s}" for s in (16, 48, 128))
    return f


def get_config(variant: str = ""):
    c = ml_collections.ConfigDict()
    c.seed = 0  # scenes, motion, noise: everything derives from this
    c.height, c.width = 240, 320  # frame size
    c.frames = 12  # frames per clip
    c.scenes = SCENES[:2]  # one clip per scene and setting (the two held-out photos: keeps the run under ~10 min)
    c.stills_per_clip = 2  # frames of each clip also restored alone (single-image table), evenly spaced
    c.fps = 25  # frame rate given to ffmpeg (the temporal filters do not use it)
    # Motion: camera shake is a smooth random walk of at most max_shake pixels (sub-pixel, bicubic); the moving
    # object is a person-sized textured figure crossing the frame at object_speed pixels per frame.
    c.max_shake = 1.5
    c.object_height = 0.45  # figure height as a fraction of the frame height
    c.object_speed = 6.0
    c.settings = _settings()
    c.setting_names = ("low_light", "low_light_static", "cctv", "gaussian", "poisson", "dark_h264")  # table order
    c.strengths = _strengths()
    c.methods = ("ours", "ours_temporal", "hqdn3d", "atadenoise", "nlmeans", "fftdnoiz", "bm3d")  # table order
    c.batch = 4  # frames per forward pass of our model
    c.temporal_k = 4  # ours_temporal: neighbours on each side fused before the model (what `--temporal auto` uses)
    # Targets (dB of PSNR): ours vs nlmeans on single frames; ours vs the best ffmpeg denoiser on footage; a temporal
    # restorer ('ours_temporal', or a --clip-method named 'temporal') vs the best ffmpeg denoiser and vs ours frame by
    # frame, inside the moving figure vs ours (no ghosting: not worse), and its time per frame vs ours (a ratio).
    c.targets = dict(single_vs_nlmeans=0.0, footage_vs_ffmpeg=0.0, temporal_vs_ffmpeg=2.0, temporal_vs_single=3.0,
                     temporal_figure_vs_single=0.0, temporal_cost_vs_single=2.0)
    if variant == "quick":
        c.height, c.width, c.frames = 48, 64, 3
        c.scenes = ("chelsea",)
        c.stills_per_clip = 1
        c.max_shake, c.object_speed = 1.0, 3.0
        c.setting_names = ("low_light", "dark_h264")
        c.strengths = ml_collections.ConfigDict({k: (v[0],) for k, v in _strengths().items()})
        c.strengths.bm3d = ("sigma=8:group=1:bstep=8:block=8",)
        c.batch = 2
    elif variant:
        raise ValueError(f"unknown variant {variant!r} of footage_bench.py (known: quick)")
    return c
