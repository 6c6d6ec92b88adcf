"""The GPU section: skipped with a reason on a CPU machine; its measurement runs on CPU too."""

import math

import pytest

from tfmask.bench import gpu
from tfmask.bench.input_pipeline import TINY_QUICK


def test_section_records_why_it_is_skipped_without_a_gpu(tmp_path):
    if gpu.gpu_names():
        pytest.skip("a GPU is present: `make bench` runs the section")
    section = gpu.run(tmp_path, quick=True)
    assert section.rows == []
    assert section.details == {"devices": [],
                               "skipped": "no GPU visible to TensorFlow on this machine"}


def test_config_resizes_without_touching_mask_size(tmp_path):
    from tfmask.config.textproto import read_text_file

    msg = read_text_file(gpu._config(gpu.R50_1024, tmp_path / "records",
                                     tmp_path / "c.config", 1024))
    frcnn = msg.get_path("model.faster_rcnn")
    resizer = frcnn.get_path("image_resizer.keep_aspect_ratio_resizer")
    assert (resizer.get("min_dimension"), resizer.get("max_dimension")) == (1024, 1024)
    assert frcnn.get_path("second_stage_box_predictor.mask_rcnn_box_predictor.mask_height") == 28
    assert msg.get_path("train_config.batch_size") == 8
    irv2 = read_text_file(gpu._config(gpu.IRV2_1024, tmp_path / "records",
                                      tmp_path / "i.config", None))
    assert irv2.get_path("train_config.fine_tune_checkpoint") is None
    assert irv2.get_path("model.faster_rcnn.image_resizer.fixed_shape_resizer.height") == 1024


@pytest.mark.slow
def test_measure_case_on_cpu_with_the_tiny_config(tmp_path):
    got = gpu.measure_case(TINY_QUICK, tmp_path, None, "float32", warmup=1, timed=2,
                           latency_runs=2)
    assert got["timed_steps"] == 2 and got["batch"] >= 1
    assert math.isfinite(got["images_per_s"]) and got["images_per_s"] > 0
    assert got["latency"]["median_ms"] > 0 and got["latency"]["runs"] == 2
    rows = gpu._rows("tiny", got, "CPU")
    assert [r.unit for r in rows] == ["img/s", "ms"]
