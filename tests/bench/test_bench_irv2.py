"""The irv2_1024 section: the tutorial model's CPU training figures (measured here on the tiny
config, whose code path is the same)."""

import math
from dataclasses import replace

import pytest

from tfmask.bench import irv2_1024
from tfmask.bench.input_pipeline import TINY_QUICK


@pytest.mark.slow
def test_measure_trains_the_config_and_reads_its_step_times(tmp_path):
    case = replace(TINY_QUICK, train_batch=1)
    got = irv2_1024.measure(case, tmp_path, 64, warmup=1, timed=2)
    assert got["input_size"] == [64, 64] and got["batch"] == 1
    assert len(got["step_s"]) == 2 and all(s > 0 for s in got["step_s"])
    assert math.isclose(got["steps_per_s"], 1 / got["median_step_s"], rel_tol=1e-2)
    assert got["peak_rss_mib"] > 100  # TensorFlow alone takes more
    rows = irv2_1024._rows(got)
    assert [(r.unit, r.higher_is_better) for r in rows] == [("steps/s", True), ("MiB", False)]
    assert "64x64" in rows[0].name and "batch 1" in rows[0].name


def test_the_section_measures_the_shipped_config_at_its_size():
    assert irv2_1024.IRV2.config == "mask_rcnn_inception_resnet_v2_1024x1024.config"
    assert irv2_1024.IRV2.train_batch == 1
