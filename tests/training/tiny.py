"""Tiny training configurations for tests: the demo config shrunk to 16-pixel crops and width-4 models."""
from configs import bsd64
from restorenet_jax.configs.default import baseline_arch


def tiny_config(**overrides):
    c = bsd64.get_config("demo")
    c.model.deblur = baseline_arch(4, (1, 1), 1, (1, 1))
    c.model.denoise = baseline_arch(4, (1, 1), 1, (1, 1))
    c.model.extra.width = 4
    c.model.extra.enc_blk_nums = (1, 1)
    c.model.extra.dec_blk_nums = (1, 1)
    c.model.train_size = (16, 16)
    c.data.crop_size = 16
    c.data.degrade_on = "device"  # the training tests exercise the device path on CPUs too ('auto' picks host)
    c.data.eval_crop = 32
    c.eval.limit = 2
    c.data.eval_kinds = "blur_noise"
    c.data.noise.kind = "low_light"  # these tests exercise training, not the noise: the cheaper device program
    c.eval.families = ""  # the per-family report has its own test
    c.eval.held_out_families = ""
    c.batch_size = 2
    c.num_train_steps = 6
    c.optim.lr, c.optim.warmup_steps = 2e-3, 0  # not the demo's schedule, tuned for its length
    c.pretrain.steps = 0
    c.init.allow_random_backbones = True
    c.log_every_steps = 2
    c.checkpoint_every_steps = 3
    for k, v in overrides.items():
        node = c
        *parents, leaf = k.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = v
    return c


def extra_stage_step(c, schedule_steps, prepare_batch=None):
    """(train_step, initial state) of config `c`'s model with only the 'extra' group trainable (not jitted, so a
    caller can add shardings); `prepare_batch` as make_train_step's (e.g. make_device_inputs)."""
    import jax

    from restorenet_jax.models.restorenet import build_model, init_params
    from restorenet_jax.training import optim
    from restorenet_jax.training.loop import model_arch
    from restorenet_jax.training.losses import psnr_loss
    from restorenet_jax.training.step import create_train_state, make_train_step

    arch = model_arch(c)
    params = init_params(arch, jax.random.PRNGKey(0))
    labels = optim.group_labels(params, c.freeze.groups)
    phase = frozenset({"extra"})
    tx = optim.make_optimizer(c.optim, labels, set(phase))
    state = create_train_state(params, tx, labels, set(phase), use_ema=False)
    step = make_train_step(build_model(arch), psnr_loss, tx, optim.learning_rate_schedule(c.optim, schedule_steps),
                           labels, phase, set(phase), 0.0, prepare_batch)
    return step, state
