"""The OpenVINO engine's dynamic-shape mode (what `serve` runs on a CPU): one program for every size, equal to the
JAX model in float32 at odd sizes, with static programs only for the sizes warmed up."""
import numpy as np
import pytest

from restorenet_jax.inference import engines
from tests.tiny_model import tiny_checkpoint

pytestmark = pytest.mark.skipif(not engines.installed("openvino"), reason="OpenVINO not installed")
# Odd sizes; sides 17..32 share one JAX size bucket, so the reference compiles once (bucketing is exact, see
# tests/models/test_buckets.py).
SIZES = ((17, 23), (31, 18), (25, 32), (19, 29))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ckpt = tiny_checkpoint(tmp_path_factory)
    return (engines.load_engine(ckpt, "jax", precision="fp32", bucketing=True),
            engines.load_engine(ckpt, "openvino", precision="fp32", dynamic_shapes=True))


def test_one_program_runs_every_size_exactly(pair):
    reference, engine = pair
    rng = np.random.default_rng(3)
    for h, w in SIZES:
        x = rng.random((h, w, 3), dtype=np.float32)
        want, got = reference(x, clip=False), engine(x, clip=False)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max()), (h, w)
    assert engine.compiles == 1 and len(engine._compiled) == 0  # the dynamic program only


def test_warmup_sizes_get_static_programs(tmp_path_factory):
    engine = engines.load_engine(tiny_checkpoint(tmp_path_factory), "openvino", precision="fp32",
                                 dynamic_shapes=True, max_programs=2)
    engine.warmup([(24, 40)])
    assert engine.compiles == 1 and list(engine._compiled) == [(False, (1, 3, 24, 40))]
    engine(np.zeros((24, 40, 3), np.float32))  # served by its static program: nothing new compiled
    engine(np.zeros((25, 40, 3), np.float32))  # any other size: the dynamic program (compiled once)
    engine(np.zeros((26, 41, 3), np.float32))
    assert engine.compiles == 2 and len(engine._compiled) == 1


def test_static_shapes_stay_the_default(tmp_path_factory):
    engine = engines.load_engine(tiny_checkpoint(tmp_path_factory), "openvino", precision="fp32")
    assert not engine.dynamic
    for h in (16, 20):
        engine(np.zeros((h, 8, 3), np.float32))
    assert engine.compiles == 2
