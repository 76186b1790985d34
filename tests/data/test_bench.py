"""bench_pipeline.measure runs the real pipeline and reports a positive throughput."""
from restorenet_jax.data.bench_pipeline import measure


def test_measure_reports_throughput(bsd_cfg):
    result = measure(bsd_cfg, batches=2, batch_size=2)
    assert result['crops_per_s'] > 0 and result['s_per_batch'] > 0 and result['crops_per_cpu_s'] > 0
