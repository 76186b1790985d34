"""The original RestoreNet's extra-model variants build, run on odd sizes, and keep the parameter names training relies on;
bf16 compute keeps float32 parameters and stays close to float32."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from restorenet_jax.inference.restorer import Restorer
from restorenet_jax.models.arch import NAMED_EXTRAS, ModelArch
from restorenet_jax.models.layers import pad_to_multiple
from restorenet_jax.models.restorenet import RestoreNet, abstract_params, build_model
from tests.checkpoint_fixtures import TINY_ARCHS, TINY_DEBLUR, TINY_DENOISE, random_params


def test_named_extras_are_the_seed_candidates():
    assert NAMED_EXTRAS["baseline64"].width == 64 and NAMED_EXTRAS["baseline64"].dec_blk_nums == (1, 1, 1, 1)
    assert NAMED_EXTRAS["baseline64_dec2"].dec_blk_nums == (2, 2, 2, 2)
    assert all(e.enc_blk_nums == (2, 2, 4, 8) for k, e in NAMED_EXTRAS.items() if e.kind == "baseline")
    assert NAMED_EXTRAS["baseline16_conv"].refine_conv
    # Full-size extra (as shipped) is about 32 M parameters (the original RestoreNet checkpoint).
    arch = ModelArch("restorenet", deblur=TINY_DEBLUR, denoise=TINY_DENOISE, extra=NAMED_EXTRAS["baseline64"])
    n = sum(np.prod(v.shape) for v in jax.tree_util.tree_leaves(abstract_params(arch)["extra"]))
    assert 28e6 < n < 36e6


@pytest.mark.parametrize("name", sorted(NAMED_EXTRAS))
def test_each_extra_variant_runs_on_an_odd_size(name):
    # Tiny width and one block per level (compile time); kind, levels, decoder pattern and refine conv as named.
    named = NAMED_EXTRAS[name]
    extra = dataclasses.replace(named, width=4, enc_blk_nums=(1,) * named.levels, middle_blk_num=1,
                                dec_blk_nums=tuple(min(n, 2) for n in named.dec_blk_nums))
    arch = ModelArch("restorenet", deblur=TINY_DEBLUR, denoise=TINY_DENOISE, extra=extra)
    params = random_params(arch, seed=0, scale=0.1)
    assert set(params) >= {"deblur", "denoise", "extra"}
    assert ("refine_0" in params) == extra.refine_conv
    # What the variant changes: the extra network (and refine convs) on the two residuals of an odd-sized input
    # padded as RestoreNet pads it; the backbones' outputs are stand-ins (the backbones are tested elsewhere).
    x = pad_to_multiple(jnp.ones((1, 21, 27, 3)) * 0.5, arch.pad_multiple)
    assert x.shape[1:3] != (21, 27)
    rng = np.random.default_rng(0)
    deblurred, denoised = (x + 0.05 * jnp.asarray(rng.standard_normal(x.shape), jnp.float32) for _ in range(2))
    combine = jax.jit(functools.partial(build_model(arch).apply, method=RestoreNet._combine))
    y = combine({"params": params}, x, deblurred, denoised)
    assert y.shape == x.shape and bool(jnp.isfinite(y).all()) and float(jnp.abs(y - x).max()) > 0


def test_bf16_compute_keeps_fp32_params_and_close_output():
    # The Baseline (every layer kind of the backbones); RestoreNet's bf16 program is checked with the cast-once test.
    arch = TINY_ARCHS["baseline"]
    params = random_params(arch, seed=2, scale=0.1)
    x = np.random.default_rng(0).random((24, 40, 3), dtype=np.float32)
    fp32 = Restorer(arch, params)(x, clip=False)
    bf16 = Restorer(arch, params, dtype="bfloat16")
    assert all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(bf16.params))
    y = bf16(x, clip=False)
    assert y.dtype == np.float32
    mse = float(np.mean((y - fp32) ** 2))
    assert 0 < mse and 10 * np.log10(1.0 / mse) > 30.0  # bf16 really differs, but only slightly


# Every layer kind in two cases (each compiles a model: ~13 s on 2 cores): the serial model, and RestoreNet with a
# comparison extra (U-Net), the refine convolutions and TLC in its Baseline backbones.
@pytest.mark.parametrize("case", ["serial", "restorenet-unet-refine-tlc"])
def test_bf16_predictor_casts_weights_once_with_identical_output(case):
    # The predictor hands the bf16 program its convolution weights already in bf16 (cast once, not per call):
    # outputs must equal the model run on the float32 parameters bit for bit, and LayerNorm stays float32.
    from restorenet_jax.models.predictor import Predictor

    kind, *variants = case.split("-")
    arch = TINY_ARCHS[kind]
    if "tlc" in variants:
        arch = arch.replace(tlc=True)
    if "unet" in variants:
        arch = arch.replace(extra=dataclasses.replace(NAMED_EXTRAS["unet"], width=4))
    if "refine" in variants:
        arch = arch.replace(extra=dataclasses.replace(arch.extra, refine_conv=True))
    params = random_params(arch, seed=3, scale=0.1)
    x = np.random.default_rng(1).random((1, 37, 53, 3), dtype=np.float32)
    reference = jax.jit(build_model(arch, dtype=jnp.bfloat16).apply)({"params": params}, x)
    predictor = Predictor(arch, params, dtype="bfloat16")
    np.testing.assert_array_equal(np.asarray(predictor.restore_batch(x)), np.asarray(reference))
    _, compute, _ = predictor._placed
    dtypes = {"/".join(str(k.key) for k in path): leaf.dtype
              for path, leaf in jax.tree_util.tree_leaves_with_path(compute)}
    assert any(d == jnp.bfloat16 for name, d in dtypes.items() if name.endswith("kernel"))
    assert all(d == jnp.float32 for name, d in dtypes.items() if "norm" in name or name.endswith(("beta", "gamma")))
    assert all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(predictor.params))


def test_depthwise_implementations_agree():
    from restorenet_jax.models.layers import DepthwiseConv3x3

    x = jax.random.normal(jax.random.PRNGKey(1), (2, 13, 17, 8))
    params = DepthwiseConv3x3(8, "conv").init(jax.random.PRNGKey(0), x)
    a = DepthwiseConv3x3(8, "conv").apply(params, x)
    b = DepthwiseConv3x3(8, "shifted").apply(params, x)
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown depthwise"):
        DepthwiseConv3x3(8, "fft").apply(params, x)


def test_depthwise_shifted_gradients_equal_the_convolutions():
    """The shifted path's hand-written gradient (input and kernel) against XLA's autodiff of its grouped
    convolution, on an odd size, in float32 and through jit."""
    from restorenet_jax.models.layers import DepthwiseConv3x3

    x = jax.random.normal(jax.random.PRNGKey(1), (3, 13, 17, 5))
    target = jax.random.normal(jax.random.PRNGKey(2), (3, 13, 17, 5))
    params = DepthwiseConv3x3(5, "conv").init(jax.random.PRNGKey(0), x)

    def loss(impl):
        return jax.jit(jax.grad(lambda p, x: jnp.sum((DepthwiseConv3x3(5, impl).apply(p, x) - target) ** 3),
                                argnums=(0, 1)))

    (gp_ref, gx_ref), (gp, gx) = loss("conv")(params, x), loss("shifted")(params, x)
    for a, b in [(gx, gx_ref), *zip(jax.tree_util.tree_leaves(gp), jax.tree_util.tree_leaves(gp_ref))]:
        a, b = np.asarray(a), np.asarray(b)
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-5
