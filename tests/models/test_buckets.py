"""Size-bucketed prediction: the bucket rule, exactness of the masked (bucketed) forward against the exact-shape
forward, the bounded cache of compiled programs, and that compiling one shape never blocks calls on another."""
import dataclasses
import gc
import threading
import weakref

import jax
import numpy as np
import pytest

from restorenet_jax.models import buckets
from restorenet_jax.models.predictor import Predictor
from restorenet_jax.models.restorenet import build_model, supports_valid
from tests.checkpoint_fixtures import TINY_ARCHS, random_params

# (h, w) pairs whose official padded size (multiple of 16) is not itself a bucket, so the bucketed program really
# computes on a bigger map than the exact model: 100 -> 112 -> 128, 120 -> 128 (a bucket: no extra rows).
ODD_SIZES = [(100, 37), (120, 45)]


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


def _images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((h, w, 3), dtype=np.float32) for h, w in sizes]


def test_bucket_rule():
    for m in (8, 16, 32):
        sides = [buckets.bucket_side(n, m) for n in range(1, 9000)]
        assert all(s % m == 0 for s in sides)
        assert all(a <= b for a, b in zip(sides, sides[1:]))  # monotone
        rungs = sorted(set(sides))
        assert all(b / a <= 4 / 3 + 1e-9 for a, b in zip(rungs, rungs[1:]) if a >= 4 * m)
        for n in range(1, 9000):  # never below the official padded size; < 4/3 of it (the documented worst case)
            p = buckets.padded_side(n, m)
            assert p <= buckets.bucket_side(n, m) < 4 / 3 * p
        for top in (1, 15, 17, 100, 720, 4096, 5000, 8999):
            assert buckets.count_buckets(top, m) == len(set(sides[:top]))
    assert buckets.bucket_shape(720, 1280, 16) == (768, 1280)  # a 1280x720 frame pads 48 rows only
    assert buckets.bucket_shape(1080, 1920, 16) == (1280, 2048)
    assert [buckets.bucket_side(n, 16) for n in (1, 16, 17, 64, 65, 97, 4096, 4097, 6000)] == [
        16, 16, 32, 64, 80, 128, 4096, 5120, 6144]
    assert buckets.count_buckets(4096, 16) == 22
    with pytest.raises(ValueError):
        buckets.bucket_side(0, 16)


def test_bucketed_baseline_equals_exact_with_one_program():
    arch = TINY_ARCHS["baseline"]
    params = random_params(arch, seed=1)
    assert {buckets.bucket_shape(h, w, arch.pad_multiple) for h, w in ODD_SIZES} == {(128, 48)}
    bucketed = Predictor(arch, params, bucketing=True)
    exact = Predictor(arch, params)
    assert bucketed.bucketing and not exact.bucketing
    for x in _images(ODD_SIZES):
        want = exact(x, clip=False)
        got = bucketed(x, clip=False)
        assert got.shape == want.shape == x.shape
        assert _rel(got, want) < 1e-5
        batch = bucketed.restore_batch(x[None])  # the batch path crops on the device
        assert batch.shape == (1, *x.shape) and _rel(batch[0], want) < 1e-5
    # Both sizes (two different valid regions) ran in the one program of their bucket.
    assert bucketed.compiles == 1 and bucketed.traces == 1 and exact.compiles == 2


@pytest.mark.parametrize("kind", ["restorenet", "serial"])
def test_bucketed_compare_equals_exact(kind):
    # `compare` runs every method in one program (`comparison`: backbones, serial, RestoreNet's extra network).
    arch = TINY_ARCHS[kind]
    params = random_params(arch, seed=2)
    [x] = _images(ODD_SIZES[:1], seed=3)
    bucketed = Predictor(arch, params, bucketing=True)
    assert bucketed.bucketing
    want = Predictor(arch, params).compare(x)
    got = bucketed.compare(x)
    assert set(got) == set(want) == set(bucketed.methods)
    for method in want:
        assert got[method].shape == x.shape
        assert _rel(got[method], want[method]) < 1e-5, method


def test_forty_sizes_compile_once_per_bucket_and_hold_at_most_max_programs():
    arch = TINY_ARCHS["baseline"]
    rng = np.random.default_rng(4)
    # Three buckets, 40 distinct sizes, grouped by bucket (as a service meeting sizes in runs would).
    ranges = [((1, 16), (17, 32)), ((33, 48), (1, 16)), ((17, 32), (33, 48))]
    sizes = []
    for (h0, h1), (w0, w1) in ranges:
        group = set()
        while len(group) < 40 // 3 + (len(sizes) == 0):
            group.add((int(rng.integers(h0, h1 + 1)), int(rng.integers(w0, w1 + 1))))
        sizes.extend(sorted(group))
    assert len(set(sizes)) == 40
    distinct = {buckets.bucket_shape(h, w, arch.pad_multiple) for h, w in sizes}
    assert len(distinct) == 3

    predictor = Predictor(arch, random_params(arch, seed=5), bucketing=True, max_programs=2)
    compile_step, compiled = predictor._compile, []

    def recording(*args):
        program = compile_step(*args)
        compiled.append(weakref.ref(program))
        return program

    predictor._compile = recording
    held = []
    for x in _images(sizes):
        assert predictor(x).shape == x.shape
        held.append(predictor.programs)
    assert predictor.compiles == len(distinct) and max(held) == 2 and predictor.programs == 2
    gc.collect()
    # The first bucket's program was evicted and really freed; the last two are alive.
    assert [ref() is not None for ref in compiled] == [False, True, True]

    # New parameters of the same shapes reuse the programs.
    traces = predictor.traces
    predictor.set_params(random_params(arch, seed=6))
    predictor(_images(sizes[-1:])[0])
    assert predictor.compiles == len(distinct) and predictor.traces == traces


def test_compiling_a_new_shape_does_not_block_compiled_shapes():
    arch = TINY_ARCHS["baseline"]
    predictor = Predictor(arch, random_params(arch, seed=7), bucketing=True)
    small, big = _images([(20, 20), (100, 37)], seed=8)
    predictor.warmup([small.shape[:2]])
    assert predictor.compiles == 1
    started, release = threading.Event(), threading.Event()
    compile_step, big_compiles, finished, results = predictor._compile, [], [], {}

    def slow_for_big(tag, shape, *args):
        if shape[1:] == (128, 48):
            big_compiles.append(shape)
            started.set()
            assert release.wait(60)
        return compile_step(tag, shape, *args)

    predictor._compile = slow_for_big

    def call(name, x):
        results[name] = predictor(x)
        finished.append(name)

    big_threads = [threading.Thread(target=call, args=(f"big{i}", big)) for i in range(2)]
    big_threads[0].start()
    assert started.wait(60)
    big_threads[1].start()  # asks for the shape being compiled: waits for that compile, no second one
    small_thread = threading.Thread(target=call, args=("small", small))
    small_thread.start()
    small_thread.join(30)
    try:
        assert not small_thread.is_alive(), "a call on a compiled shape waited for another shape's compile"
        assert finished == ["small"] and all(t.is_alive() for t in big_threads)
    finally:
        release.set()
        for t in big_threads:
            t.join(120)
    assert sorted(finished) == ["big0", "big1", "small"]
    assert len(big_compiles) == 1 and predictor.compiles == 2
    np.testing.assert_array_equal(results["big0"], results["big1"])
    assert results["big0"].shape == big.shape


def test_tlc_and_other_extras_fall_back_to_exact_shapes_still_bounded():
    arch = TINY_ARCHS["baseline"].replace(tlc=True)
    assert not supports_valid(arch)
    restorenet = TINY_ARCHS["restorenet"]
    other_extra = restorenet.replace(extra=dataclasses.replace(restorenet.extra, kind="unet"))
    assert not supports_valid(other_extra) and supports_valid(restorenet)
    with pytest.raises(NotImplementedError):
        jax.eval_shape(lambda x: build_model(arch).apply({"params": random_params(arch)}, x, np.array([16, 16])),
                       jax.ShapeDtypeStruct((1, 32, 32, 3), np.float32))

    predictor = Predictor(arch, random_params(arch, seed=9), bucketing=True, max_programs=2)
    assert not predictor.bucketing
    sizes = [(20, 20), (24, 20), (20, 28)]  # one bucket, were bucketing possible
    for x in _images(sizes):
        assert predictor(x).shape == x.shape
        assert predictor.programs <= 2
    # Exact shapes: one program per distinct shape, the least recently used evicted.
    assert predictor.compiles == 3 and predictor.programs == 2
