"""The input_pipeline and training bench sections run (quick mode) and report
sane figures; their helpers read summaries and write configs correctly.

Benchmarks are not tests: nothing here checks a timing against a target.
"""

from __future__ import annotations

import math

import pytest
import tensorflow as tf

from tfmask.bench import input_pipeline, training
from tfmask.bench.common import Section


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bench")  # records are synthesized once, shared


def _rows(section: Section):
    return {row.name: row for row in section.rows}


@pytest.mark.slow
def test_input_pipeline_quick(work_dir):
    section = input_pipeline.run(work_dir, quick=True)
    rows = _rows(section)
    assert set(rows) == {"input pipeline, tiny", "train step on real records, tiny"}
    rate = rows["input pipeline, tiny"]
    assert rate.unit == "examples/s" and math.isfinite(rate.value) and rate.value > 0
    step = rows["train step on real records, tiny"]
    assert step.unit == "ms" and not step.higher_is_better
    for value in (step.value, step.baseline, step.ratio):
        assert math.isfinite(value) and value > 0
    assert step.met in (True, False)
    json_rows = section.to_json()["rows"]
    assert all(r["ratio"] is None or r["ratio"] > 0 for r in json_rows)
    assert section.details["tiny"]["step_s_real"] and section.details["tiny"]["step_s_cached"]


@pytest.mark.slow
def test_training_quick(work_dir):
    section = training.run(work_dir, quick=True)
    rows = _rows(section)
    assert set(rows) == {"training steps/s, tiny",
                         "training overhead vs raw Model Garden, tiny"}
    rate = rows["training steps/s, tiny"]
    for value in (rate.value, rate.baseline, rate.ratio):
        assert math.isfinite(value) and value > 0
    overhead = rows["training overhead vs raw Model Garden, tiny"]
    assert overhead.unit == "%" and math.isfinite(overhead.value)  # may be negative
    assert overhead.value == pytest.approx(100.0 * (rate.baseline / rate.value - 1.0))
    steps = section.details["tiny"]["step_s"]
    assert len(steps["tfmask"]) == len(steps["model_garden"]) == 3


def test_read_scalars_and_step_seconds(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path / "train"))
    with writer.as_default():
        for step, rate in [(1, 0.1), (2, 2.0), (3, 4.0), (4, 0.0)]:
            tf.summary.scalar(training.STEPS_PER_SECOND_TAG, rate, step=step)
            tf.summary.scalar("total_loss", 9.0, step=step)
    writer.close()
    # A second event file (a resumed run) adds steps.
    writer = tf.summary.create_file_writer(str(tmp_path / "train"))
    with writer.as_default():
        tf.summary.scalar(training.STEPS_PER_SECOND_TAG, 5.0, step=5)
    writer.close()

    rates = training.read_scalars(tmp_path / "train", training.STEPS_PER_SECOND_TAG)
    assert rates == pytest.approx({1: 0.1, 2: 2.0, 3: 4.0, 4: 0.0, 5: 5.0})
    assert training.read_scalars(tmp_path / "train", "absent") == {}
    # Warm-up steps and a zero rate are dropped; seconds = 1 / rate, in step order.
    assert training.step_seconds(rates, warmup=1) == pytest.approx([0.5, 0.25, 0.2])
    assert training.step_seconds(rates, warmup=5) == []


def test_write_config_points_at_records_and_sets_the_batch(tmp_path):
    from tfmask.config import experiment

    records = tmp_path / "records"
    records.mkdir()
    (records / "label_map.pbtxt").write_text(
        "item { id: 1 name: 'a' } item { id: 2 name: 'b' } item { id: 3 name: 'c' }")
    cfg = input_pipeline.write_config(input_pipeline.R50, records, tmp_path / "r50.config")
    params = experiment.from_pipeline_config(cfg).params
    assert params.task.train_data.global_batch_size == 1  # the shipped config says 2
    assert params.task.model.input_size == [640, 640, 3]
    assert all(p.startswith(str(records)) for p in params.task.train_data.input_path)
    assert input_pipeline.R50.slug == "r50_fpn_640"
