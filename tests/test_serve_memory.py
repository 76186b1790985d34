"""The service's memory stays bounded over a stream of distinct image sizes (a small-scale twin of the full check:
after a warm-up, 200 uploads of random sizes up to 512x512 grow RSS by <= 100 MB, the last 100 by <= 20 MB).

Uploads go through real HTTP on loopback to the app in this process, so RSS counts everything a request touches:
the upload, decoding, the engine's programs and buffers, encoding. The engines are the ones `serve` loads: the
OpenVINO engine with its one dynamic-shape program (the default on a CPU) and the JAX engine with size buckets.
"""
import random

import httpx
import pytest

from restorenet_jax.apps import serve, serve_memory
from restorenet_jax.bench.serve_load_clients import png_size, random_image
from restorenet_jax.inference import engines
from tests.live_server import live_server
from tests.tiny_model import tiny_checkpoint

WARMUP, UPLOADS = 50, 60
# Scaled from the full check (images ~30x smaller in area, 60 uploads): growth in all, and over the last half.
MAX_GROWTH_MB, MAX_LAST_HALF_MB = 20.0, 6.0


def _upload_many(url: str, sizes: list, seed: int) -> list:
    """Uploads one random image per (min, max) side range in `sizes`: [(RSS in MiB after the answer, (h, w))]."""
    rng = random.Random(seed)
    out = []
    with httpx.Client(timeout=60) as client:
        for lo, hi in sizes:
            data, h, w, name = random_image(rng, hi, lo)
            r = client.post(f"{url}/api/restore", files={"image": (name, data)})
            assert r.status_code == 200, r.text
            assert png_size(r.content) == (h, w)
            out.append((client.get(f"{url}/healthz").json()["rss_mb"], (h, w)))
    return out


@pytest.mark.skipif(serve_memory.rss_mb() is None, reason="RSS is read from /proc (Linux)")
@pytest.mark.parametrize("engine,side", [("openvino", 96), ("jax", 32)])
def test_rss_is_bounded_over_many_distinct_sizes(tmp_path_factory, engine, side, dynamic=True):
    if not engines.installed(engine):
        pytest.skip(f"{engine} is not installed")
    restorer = engines.load_engine(tiny_checkpoint(tmp_path_factory), engine, bucketing=True, max_programs=8,
                                   dynamic_shapes=dynamic)
    if engine == "jax":  # sides 17..32 share one size bucket, compiled at start-up (as `serve --warmup 32x32`)
        restorer.warmup([(32, 32)])
    with live_server(serve.create_app(restorer, serve.ServeSettings())) as url:
        _upload_many(url, [(17, side)] * WARMUP, seed=1)
        rss, sizes = zip(*_upload_many(url, [(17, side)] * UPLOADS, seed=2))
    assert len(set(sizes)) >= 0.9 * UPLOADS  # (nearly) every upload a size not seen before
    growth, last_half = rss[-1] - rss[0], rss[-1] - rss[len(rss) // 2]
    assert growth <= MAX_GROWTH_MB and last_half <= MAX_LAST_HALF_MB, (engine, rss[0], rss[len(rss) // 2], rss[-1])
    if engine == "openvino":
        assert restorer.compiles == 1  # one dynamic program served every size
    else:
        assert restorer.compiles == 1  # one program for the bucket, compiled at start-up only
