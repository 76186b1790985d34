"""The final report's gain per noise family on a tiny run: every configured family scored, the held-out one
flagged, the table in report.md; and the config check refusing unusable family settings."""
import json

import numpy as np
import pytest

from restorenet_jax.training import loop
from restorenet_jax.training.config_check import ConfigError, check_config
from tests.training.tiny import tiny_config

FIELDS = {"input_psnr", "input_ssim", "output_psnr", "output_ssim", "gain_db", "count", "held_out"}


def test_tiny_run_reports_the_gain_per_noise_family(tmp_path):
    c = tiny_config(**{"num_train_steps": 2, "eval.families": "low_light,gaussian,cctv",
                       "eval.held_out_families": "cctv", "eval.family_kinds": "noise,blur_noise"})
    report = loop.train_and_evaluate(c, tmp_path)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    per_family = on_disk["per_family"]
    assert list(per_family) == ["low_light", "gaussian", "cctv"] == list(report["per_family"])
    for name, row in per_family.items():
        assert set(row) == FIELDS, row
        assert row["count"] == 2 * 2  # eval.limit photos x 2 kinds
        assert np.isclose(row["gain_db"], row["output_psnr"] - row["input_psnr"])
        assert row["held_out"] == (name == "cctv")
    # Same photos and seeds, different noise: the families' inputs differ.
    assert len({round(r["input_psnr"], 6) for r in per_family.values()}) == 3
    table = (tmp_path / "report.md").read_text()
    assert "| cctv | 4 |" in table and "held out" in table and "| gaussian | 4 |" in table


@pytest.mark.parametrize("field,value,message", [
    ("eval.families", "mixed,bogus", "'bogus' is not a noise family"),
    ("eval.held_out_families", "poisson", "'poisson' is not among config.eval.families"),
    ("eval.held_out_families", "low_light", "'low_light' is the training noise kind"),
    ("eval.family_kinds", "noisy", "config.eval.family_kinds = 'noisy'"),
])
def test_config_check_refuses_unusable_family_settings(field, value, message):
    c = tiny_config(**{"eval.families": "low_light,gaussian,mixed", field: value})
    with pytest.raises(ConfigError, match=message):
        check_config(c)
