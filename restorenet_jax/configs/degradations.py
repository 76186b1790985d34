"""Default degradation settings: synthetic noise and synthetic blur, applied per image in the data pipeline.

`get_noise_config()` and `get_blur_config()` return ConfigDicts consumed by
`restorenet_jax.data.degradations.add_noise` / `synthetic_blur`. Only the sub-config named by `kind` is read.
Variants override a few fields, e.g.::

    noise = get_noise_config(); noise.kind = 'gaussian'; noise.gaussian.sigma_range = (5 / 255, 25 / 255)

Images are float32 in [0, 1]; every noise level below is on that scale.
"""
import ml_collections

# Every noise model `get_noise_config().kind` can name: training, evaluation and the config check read this tuple.
NOISE_KINDS = ('low_light', 'gaussian', 'poisson', 'cctv', 'mixed', 'danet', 'none')


def get_noise_config() -> ml_collections.ConfigDict:
    """Noise synthesis settings (see restorenet_jax/data/degradations.py and camera_pipeline.py)."""
    cfg = ml_collections.ConfigDict()
    # Which noise model to apply: 'mixed' (a broad family: levels, shot/read balance, demosaic, ISP sharpening and
    # denoising, chroma, banding, compression, in random order, sometimes twice; the default, so that the model
    # does well on noise it was not tuned to), 'low_light' (physics, Brooks et al. 2019 + exposure drop),
    # 'gaussian', 'poisson', 'cctv' (surveillance camera: raw-mosaic sensor noise, chroma noise, resolution drop,
    # JPEG-like blocks; uses the 'low_light' camera too), 'danet' (learned generator, needs danet_checkpoint) or
    # 'none'.
    cfg.kind = 'mixed'
    # Directory written by `python -m convert.danet DANet.pt DIR`; required when kind == 'danet'.
    cfg.danet_checkpoint = ''

    # --- 'low_light': sRGB -> linear camera RGB (unprocess) -> darken -> shot+read noise -> back to sRGB.
    ll = ml_collections.ConfigDict()
    # Red white-balance gain drawn uniformly from this range (Brooks et al. 2019, Sec. 3).
    ll.red_gain_range = (1.9, 2.4)
    # Blue white-balance gain drawn uniformly from this range (Brooks et al. 2019).
    ll.blue_gain_range = (1.5, 1.9)
    # Overall brightness gain is 1 / N(mean, std) (Brooks et al. 2019: N(0.8, 0.1)).
    ll.rgb_gain_inverse_mean = 0.8
    ll.rgb_gain_inverse_std = 0.1
    # Keep near-white pixels saturated when inverting white balance (the paper's "safe" inverse gains).
    ll.preserve_highlights = True
    # Shot-noise variance factor: log(shot) ~ U(log lo, log hi) (Brooks et al. 2019: 1e-4 .. 0.012).
    ll.shot_noise_range = (1e-4, 0.012)
    # log(read) = slope * log(shot) + intercept + N(0, read_log_std): the paper's fit over real sensors.
    ll.read_noise_slope = 2.18
    ll.read_noise_intercept = 1.20
    ll.read_noise_log_std = 0.26
    # Exposure factor multiplying the linear image before noise (dark scene => noise dominates); drawn
    # log-uniformly from this range. (1.0, 1.0) disables the darkening and reproduces plain Brooks et al.
    ll.exposure_range = (0.1, 0.5)
    # True: divide by the exposure again after the noise, like a CCTV camera's auto gain ("gain-boosted
    #   dark CCTV": same brightness as the target, strong noise in the shadows) -- pairs stay brightness-aligned.
    # False: leave the frame dark ("dark CCTV" look: dim and noisy); the target stays bright, so the model
    #   must also brighten.
    ll.rebrighten = True
    cfg.low_light = ll

    # --- 'gaussian': additive white Gaussian noise, i.i.d. per pixel and channel.
    cfg.gaussian = ml_collections.ConfigDict()
    # Standard deviation drawn uniformly per image from this range ([0, 1] image scale; 50/255 ~ 0.196).
    cfg.gaussian.sigma_range = (0.0, 50.0 / 255.0)

    # --- 'poisson': photon counting, noisy = Poisson(peak * x) / peak.
    cfg.poisson = ml_collections.ConfigDict()
    # Photon count of a white pixel, drawn log-uniformly per image (smaller = noisier).
    cfg.poisson.peak_range = (10.0, 1000.0)

    # --- 'cctv': per round, resolution drop -> the 'low_light' camera's shot+read noise on an RGGB mosaic,
    # bilinear demosaic (correlated, coloured noise) -> re-upscale -> coarse chroma noise -> 8x8 block DCT
    # quantisation (JPEG). Camera, exposure, noise levels, highlights and rebrighten: the 'low_light' fields.
    cc = ml_collections.ConfigDict()
    # Resolution factor per round, uniform: the frame is resolved at round(side * scale) pixels and upscaled back
    # (0.5 ~ a D1 analog camera shown at 1440 px; 1.0 = full resolution).
    cc.scale_range = (0.4, 1.0)
    # Std of the Cb/Cr noise ([0, 1] scale, at its grid points), uniform per round.
    cc.chroma_sigma_range = (0.0, 0.04)
    # Chroma-noise grid resolution relative to the frame, uniform per round (0.25 = blotches ~4 px wide).
    cc.chroma_scale_range = (0.15, 0.5)
    # JPEG quality (libjpeg scaling of the standard tables), an integer uniform in this closed range per round;
    # low values give the blocky look of a low-bitrate H.264 stream.
    cc.jpeg_quality_range = (20, 80)
    # Probability of a second round on the result (Real-ESRGAN's high-order degradation: re-scaled, re-encoded).
    cc.second_round_prob = 0.3
    # The second round has no exposure drop and its shot+read noise std is multiplied by this factor.
    cc.second_round_noise_scale = 0.5
    cfg.cctv = cc

    # --- 'mixed' (data/mixed.py): per round, sensor noise -> ISP ops in random order -> compression; sometimes a
    # second round. Camera and the read-noise fit (slope, intercept): the 'low_light' fields.
    mx = ml_collections.ConfigDict()
    # Exposure drop, log-uniform: from faint (1.0, no drop) to very dark; log-uniform keeps most of the mass at
    # moderate darkness (median ~0.3) rather than at the extreme.
    mx.exposure_range = (0.08, 1.0)
    # Shot-noise variance factor, log-uniform (Brooks et al. 2019's range).
    mx.shot_noise_range = (1e-4, 0.012)
    # Shot/read balance: read variance = the low-light fit's read for that shot x this factor, log-uniform.
    mx.read_balance_range = (0.2, 5.0)
    # Probability that the sensor noise is added to the sRGB values (Gaussian/Poisson-like, no camera curve).
    mx.srgb_prob = 0.25
    # Probability of an RGGB mosaic + bilinear demosaic (spatially correlated, coloured noise).
    mx.mosaic_prob = 0.4
    # Share of the per-pixel noise common to R, G and B (0 = independent colour speckle, 1 = grey grain).
    mx.luma_share_range = (0.0, 0.9)
    # ISP sharpening: unsharp-mask amount, present with this probability.
    mx.sharpen_prob = 0.35
    mx.sharpen_range = (0.3, 1.5)
    # ISP denoising: weight of a 3x3-blurred copy blended in, present with this probability.
    mx.smooth_prob = 0.35
    mx.smooth_range = (0.3, 1.0)
    # Coarse chroma noise (as 'cctv'): std on [0, 1] at the grid points and grid resolution relative to the frame.
    mx.chroma_prob = 0.4
    mx.chroma_sigma_range = (0.005, 0.04)
    mx.chroma_scale_range = (0.15, 0.5)
    # Row banding: a per-row offset (all channels) of this std on [0, 1].
    mx.banding_prob = 0.25
    mx.banding_range = (0.003, 0.02)
    # JPEG / H.264-intra-like compression: probability and integer quality range.
    mx.jpeg_prob = 0.6
    mx.jpeg_quality_range = (20, 90)
    # Second round (Real-ESRGAN's second order): probability, and its sensor-noise std factor (no exposure drop).
    mx.second_round_prob = 0.25
    mx.second_round_noise_scale = 0.5
    cfg.mixed = mx
    return cfg


def get_blur_config() -> ml_collections.ConfigDict:
    """Synthetic blur settings (see restorenet_jax/data/degradations.py)."""
    cfg = ml_collections.ConfigDict()
    # Which blur to apply: 'motion' (random camera-shake trajectory), 'uniform' (box) or 'none'.
    cfg.kind = 'motion'
    # numpy.pad mode used at the borders so the output keeps the input's [H, W].
    cfg.pad_mode = 'reflect'

    # --- 'motion': kernel = a rasterised random smooth trajectory.
    cfg.motion = ml_collections.ConfigDict()
    # Kernel side length drawn uniformly from the odd integers in this closed range.
    cfg.motion.size_range = (9, 25)
    # Kernel parameters passed to motion_blur_kernel(rng, size, **params):
    cfg.motion.params = ml_collections.ConfigDict()
    # Trajectory length as a fraction of (size - 1), drawn uniformly per kernel.
    cfg.motion.params.length_range = (0.5, 1.0)
    # Std (radians) of the heading change per trajectory step: 0 = straight line, larger = curvier shake.
    cfg.motion.params.curvature = 0.1
    # Number of trajectory samples splatted onto the grid (dense enough for a continuous streak).
    cfg.motion.params.num_points = 64

    # --- 'uniform': box kernel, as in BSD-B's synthetic uniform blur.
    cfg.uniform = ml_collections.ConfigDict()
    # Kernel side length drawn uniformly from the odd integers in this closed range.
    cfg.uniform.size_range = (3, 15)
    return cfg
