"""Data configuration: datasets and mixing, degradation ratios, augmentation, filtering, embedded default set.

Used by `restorenet_jax.data.pipeline.make_train_iterator` / `make_eval_examples`, `prepare_data`,
`export_degraded` and `bench_pipeline`. Example: `python -m restorenet_jax.data.bench_pipeline --config configs/data.py`.

Dataset specs are comma-separated `NAME[/CONFIG][@SPLIT][:WEIGHT]`, e.g. `"gopro_large/blur_gamma:2,realblur_j:1"`.
Names: embedded, gopro_large, realblur_j, realblur_r, realblur_tele (configs j, r), bsd_b, sidd, and one's own
folders folder/NAME, paired_folder/NAME, paired_noise_folder/NAME (prepared with `prepare_data`, NAME your label).
"""
import ml_collections

from restorenet_jax.configs.degradations import get_blur_config, get_noise_config


def get_embedded_config() -> ml_collections.ConfigDict:
    """Parameters of the embedded default set (built offline from scikit-image's bundled colour photos)."""
    c = ml_collections.ConfigDict()
    c.seed = 0  # everything (crop positions, scales, blur kernels) derives from this seed
    # Source photos (only images shipped in the scikit-image wheel: nothing is downloaded). Train and test use different
    # photos, so the held-out split shares no content with training. 'motorcycle' = stereo_motorcycle left view.
    c.train_images = 'astronaut,rocket,motorcycle,immunohistochemistry,retina'
    c.test_images = 'chelsea,coffee'
    c.train_pairs_per_image = 60  # 5 photos x 60 = 300 training pairs
    c.test_pairs_per_image = 16  # 2 photos x 16 = 32 held-out pairs
    c.min_size = 128  # side of the square pairs, drawn uniformly in [min_size, max_size]
    c.max_size = 256
    c.min_scale = 0.5  # photo rescale factor drawn in [min_scale, max_scale] before cropping (more variety)
    c.max_scale = 1.0
    c.margin = 32  # pixels blurred around each crop and then cut away, so blur at the crop edge sees real content
    return c


def get_data_config() -> ml_collections.ConfigDict:
    """Default data configuration: train and evaluate on the embedded set with the original RestoreNet's 13:2:2:1 mix."""
    c = ml_collections.ConfigDict()
    c.datasets = 'embedded'  # training mix, `NAME[/CONFIG][@SPLIT][:WEIGHT]` comma-separated (weights relative)
    c.train_split = 'train'  # split used for training when a spec names none
    c.eval_datasets = 'embedded'  # datasets for periodic eval / evaluate CLI (split from the caller unless `@SPLIT`)
    c.data_dir = '~/.cache/restorenet_jax/datasets'  # TFDS data dir; the embedded set is built here on first use
    # Per-example input kinds, order Blur+Noise : Blur : Noise : GT (the original RestoreNet's 13:2:2:1; "1:0:0:0" = always BN).
    c.ratio = '13:2:2:1'
    c.crop_size = 256  # square random training crop; must be > 0 for training (batches need one size)
    c.small_images = 'pad'  # images smaller than crop_size: 'pad' (reflect, same on input and target) or 'skip'
    c.random_flip = True  # random horizontal and vertical flips (identical on input and target)
    c.random_rot90 = True  # random 90-degree rotation (identical on input and target)
    # Training examples whose target mean HSV V (max over RGB, mean over pixels) <= threshold are excluded (seed:
    # dark images kept the model from deblurring); a negative value disables the filter. Eval is never filtered.
    c.brightness_threshold = 0.2
    c.shuffle = True  # shuffle each epoch (a fresh order per epoch, derived from the seed)
    # Disjoint data shards, each with its own seeded order and slice of every batch (0: one per process). Fix it
    # (a multiple of the process count) to get the same batches whatever the number of processes.
    c.num_shards = 0
    c.num_workers = 0  # grain worker processes (0 = in-process; >0 needs absl flags parsed and a __main__ guard)
    c.worker_buffer_size = 2  # batches each worker prepares ahead when num_workers > 0
    # Where the input kinds (blur, noise) are made: 'device' = batched inside the jitted training step, sharded with
    # the batch (the host only decodes and crops uint8); 'host' = numpy per example in the data pipeline (the
    # reference path); 'auto' = 'device' when JAX's default backend is an accelerator, 'host' on a CPU-only machine
    # (there XLA's CPU degradations cost more than numpy's: the demo batch ~120 ms against ~25 ms, on the same cores
    # as the model). Noise kind 'danet' runs its generator in the training step too.
    c.degrade_on = 'auto'
    # Training crops cut from each decoded record: decoding dominates the host's work on large frames, so e.g. 16-32
    # for 1280x720 sources (GoPro) multiplies the crops per second; 1 for small photos (the embedded set).
    c.crops_per_read = 1
    # With crops_per_read > 1: crops shuffled within windows of this many, so one batch seldom holds two crops of
    # one read (memory: window x 2 x crop_size^2 x 3 bytes).
    c.crop_shuffle_window = 256
    # Reading ahead (decode + crop in a thread pool): threads, and how many crops to hold ready. grain's defaults
    # (16 threads, 500 records) would hold 500 x crops_per_read crop pairs (~3 GB at 16 per read) and spend CPU
    # reading far ahead; measured on 2 cores, 4 threads and 128 crops give the most crops per CPU-second.
    c.read_threads = 4
    c.read_ahead_crops = 128
    c.on_corrupt = 'skip'  # undecodable / mismatched image: 'skip' (counted warning) or 'raise'
    c.noise = get_noise_config()  # noise added on the fly for the Blur+Noise and Noise kinds
    c.blur = get_blur_config()  # synthetic blur: embedded builder, and blur kinds for noise-only pairs (SIDD)
    c.embedded = get_embedded_config()  # the embedded default set's build parameters
    c.eval_crop = 0  # eval: centre crop side (0 = full images)
    c.eval_limit = 0  # eval: max source examples per dataset (0 = all)
    c.eval_kinds = 'blur_noise,blur,noise,gt'  # eval: every source example is evaluated in each of these kinds
    return c


def get_config() -> ml_collections.ConfigDict:
    """Entry point for `--config configs/data.py` (ml_collections config_flags)."""
    return get_data_config()
