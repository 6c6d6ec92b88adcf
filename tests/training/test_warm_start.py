"""Warm start from checkpoints: what matches is restored and reported, the rest is named."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfmask.errors import ConfigError, DataError
from tfmask.training import loop
from tfmask.config import experiment
from tfmask.training.warm_start import model_variables, warm_start
from conftest import write_config


def _model(cfg):
    from official.core import task_factory

    params = experiment.from_pipeline_config(cfg).params
    return task_factory.get_task(params.task).build_model()


def _save_like_model_garden(model, prefix):
    """The root layout of a Model Garden training checkpoint (model + its parts)."""
    return tf.train.Checkpoint(model=model, **model.checkpoint_items).write(str(prefix))


@pytest.fixture(scope="module")
def saved(tiny_records, tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    cfg = write_config(root / "p.config", tiny_records)
    model = _model(cfg)
    return cfg, model, _save_like_model_garden(model, root / "ckpt" / "ckpt-1")


def _values(module):
    return {"/".join(p): v.numpy() for p, v in model_variables({"m": module}).items()}


def test_backbone_init_from_saved_checkpoint_matches_every_variable(saved):
    cfg, source, path = saved
    target = _model(cfg)
    report = warm_start(target, path, "backbone")
    assert report.missing == [] and report.shape_mismatch == []
    assert len(report.matched) == len(target.backbone.variables) > 50
    want, got = _values(source.backbone), _values(target.backbone)
    assert want.keys() == got.keys()
    for name in want:  # moving BN statistics included
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # Only the backbone was restored: the decoder keeps its own initial values.
    src_decoder, dst_decoder = _values(source.decoder), _values(target.decoder)
    kernels = [k for k in src_decoder if k.endswith("kernel")]
    assert kernels and all(not np.array_equal(src_decoder[k], dst_decoder[k]) for k in kernels)
    assert report.summary_lines()[0].endswith(
        f"{len(report.matched)} of {len(report.matched)} variables restored")


def test_folder_resolves_to_its_newest_checkpoint(saved, tmp_path):
    cfg, source, path = saved
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=source, **source.checkpoint_items), str(tmp_path), 2)
    manager.save(checkpoint_number=7)
    report = warm_start(_model(cfg), str(tmp_path), "all")
    assert report.source.endswith("ckpt-7") and not report.missing


def test_detection_init_skips_layers_whose_shape_changed(saved, tmp_path):
    """A 3-class checkpoint warm-starts a 1-class model: class outputs differ in shape."""
    cfg, source, path = saved
    one_class = write_config(tmp_path / "one.config", tmp_path,
                             {"model.faster_rcnn.num_classes": 1})
    (tmp_path / "label_map.pbtxt").write_text("item { id: 1 name: 'speaker' }\n")
    target = _model(one_class)
    report = warm_start(target, path, "all")
    mismatched = [p for p, _, _ in report.shape_mismatch]
    assert mismatched and all("detection_head" in p or "mask_head" in p
                              for p in mismatched), mismatched
    assert len(report.matched) + len(mismatched) == len(target.variables)
    want = _values(source.backbone)
    got = _values(target.backbone)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert "shape differs" in "\n".join(report.summary_lines())


def test_classification_init_must_restore_the_whole_backbone(saved, tmp_path):
    cfg, source, _ = saved
    partial = tf.train.Checkpoint(decoder=source.decoder).write(str(tmp_path / "dec"))
    with pytest.raises(DataError, match="cannot be restored.*whole backbone"):
        warm_start(_model(cfg), partial, "backbone")


def test_unrelated_checkpoint_restores_nothing_and_fails(saved, tmp_path):
    cfg, _, _ = saved
    other = tf.train.Checkpoint(something=tf.Variable([1.0])).write(str(tmp_path / "x"))
    with pytest.raises(DataError, match="no variable of this checkpoint matches"):
        warm_start(_model(cfg), other, "all")


@pytest.mark.parametrize("where, match", [
    ("missing/ckpt-1", "checkpoint not found"),
    ("emptydir", "no checkpoint found in this folder"),
    ("weights.h5", "weights file not found"),
])
def test_missing_checkpoints_are_named(saved, tmp_path, where, match):
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(DataError, match=match):
        warm_start(_model(saved[0]), str(tmp_path / where), "all")


def test_h5_weights_are_for_the_inception_resnet_v2_backbone(saved, tmp_path):
    h5 = tmp_path / "w.h5"
    h5.write_bytes(b"")
    with pytest.raises(ConfigError, match="Inception-ResNet-v2"):
        warm_start(_model(saved[0]), str(h5), "backbone")
    with pytest.raises(ConfigError, match="classification"):
        warm_start(_model(saved[0]), str(h5), "all")


def test_training_run_reports_the_warm_start(tiny_records, tmp_path):
    first = write_config(tmp_path / "a.config", tiny_records)
    exp = experiment.from_pipeline_config(first)
    loop.train(exp, tmp_path / "a", experiment.RunOptions(num_train_steps=1),
               say=lambda s: None)
    second = write_config(tmp_path / "b.config", tiny_records, {
        "train_config.fine_tune_checkpoint": str(tmp_path / "a"),
        "train_config.fine_tune_checkpoint_type": "detection"})
    lines = []
    loop.train(experiment.from_pipeline_config(second), tmp_path / "b",
               experiment.RunOptions(num_train_steps=1), say=lines.append)
    report = [s for s in lines if s.startswith("warm start from")]
    assert len(report) == 1 and report[0].startswith(f"warm start from {tmp_path / 'a'}")
    n = report[0].split(": ")[-1].split(" of ")
    assert n[0] == n[1].split()[0], report  # every variable restored
