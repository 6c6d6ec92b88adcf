"""tfmask's Model Garden task: saved params load back, augmentations reach the input
pipeline, the Inception-ResNet-v2 config warm-starts from Keras .h5 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfmask.errors import DataError
from tfmask.config import experiment
from tfmask.config.textproto import parse_text
from conftest import ROOT, write_config


def _first_boxes(params):
    from official.core import task_factory

    task = task_factory.get_task(params.task)
    data = params.task.train_data
    data.shuffle_buffer_size = 1
    data.global_batch_size = 1
    _, labels = next(iter(task.build_inputs(data)))
    boxes = labels["gt_boxes"][0].numpy()
    return boxes[boxes[:, 0] >= 0]


def test_rotation_augmentation_reaches_the_training_inputs(tiny_records, tmp_path):
    plain = write_config(tmp_path / "a.config", tiny_records,
                         {"train_config.data_augmentation_options": None})
    rotated = write_config(tmp_path / "b.config", tiny_records, {
        "train_config.data_augmentation_options":
            parse_text("random_rotation90 { probability: 1.0 }")})
    p_plain = experiment.from_pipeline_config(plain).params
    p_rot = experiment.from_pipeline_config(rotated).params
    assert p_rot.task.train_data.parser.augmentation.rotation90_probability == 1.0
    a, b = _first_boxes(p_plain), _first_boxes(p_rot)
    assert len(a) == len(b) > 0
    assert not np.allclose(a, b)
    # Rotating the 128x96 image by 90 degrees swaps the box sides (scales differ).
    np.testing.assert_allclose(sorted((a[:, 2] - a[:, 0]) / (a[:, 3] - a[:, 1])),
                               sorted((b[:, 3] - b[:, 1]) / (b[:, 2] - b[:, 0])), rtol=0.15)


def test_saved_params_yaml_loads_back(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "label_map.pbtxt").write_text(
        "item { id: 1 name: 'a' } item { id: 2 name: 'b' } item { id: 3 name: 'c' }")
    text = (ROOT / "configs" / "mask_rcnn_inception_resnet_v2_1024x1024.config").read_text()
    text = text.replace("../dataset/records", str(tmp_path / "records")).replace(
        "random_horizontal_flip { }", "random_rotation { max_degrees: 10 }")
    cfg = tmp_path / "irv2.config"
    cfg.write_text(text)
    exp = experiment.from_pipeline_config(cfg)
    experiment.save_record(exp, tmp_path / "model")
    again = experiment.from_yaml(tmp_path / "model" / "params.yaml")
    assert again.params.task.model.backbone.type == "inception_resnet_v2"
    assert again.params.task.train_data.parser.augmentation.rotation_max_degrees == 10
    assert again.params.as_dict() == exp.params.as_dict()


def test_inception_resnet_v2_config_warm_starts_from_keras_h5(tmp_path):
    """The shipped IRv2 config (at 128 px) takes Keras ImageNet-format weights."""
    import tf_keras
    from official.core import task_factory

    from tfmask.training.warm_start import warm_start

    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "label_map.pbtxt").write_text(
        "item { id: 1 name: 'a' } item { id: 2 name: 'b' } item { id: 3 name: 'c' }")
    text = (ROOT / "configs" / "mask_rcnn_inception_resnet_v2_1024x1024.config").read_text()
    cfg = tmp_path / "irv2.config"
    cfg.write_text(text.replace("../dataset/records", str(tmp_path / "records"))
                   .replace("height: 1024 width: 1024", "height: 128 width: 128"))
    params = experiment.from_pipeline_config(cfg).params
    assert Path(params.task.init_checkpoint).name.endswith("_notop.h5")
    assert params.task.init_checkpoint_modules == "backbone"

    keras_irv2 = tf_keras.applications.InceptionResNetV2(include_top=False, weights=None,
                                                         input_shape=(128, 128, 3))
    rng = np.random.default_rng(0)
    for w in keras_irv2.weights:
        w.assign(rng.normal(size=w.shape).astype(np.float32) * 0.01)
    h5 = tmp_path / "irv2_notop.h5"
    keras_irv2.save_weights(str(h5))

    model = task_factory.get_task(params.task).build_model()
    report = warm_start(model, str(h5), params.task.init_checkpoint_modules)
    assert not report.missing and len(report.matched) == len(model.backbone.weights) == 896
    want = keras_irv2.get_layer("conv_7b").kernel.numpy()
    np.testing.assert_array_equal(model.backbone.get_layer("conv_7b").kernel.numpy(), want)
    out = model.backbone(tf.zeros([1, 128, 128, 3]))
    assert {k: v.shape[1] for k, v in out.items()} == {"2": 32, "3": 16, "4": 8, "5": 4}


def test_experiment_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("task: !!python/object/apply:os.system ['echo pwned > "
                    f"{tmp_path / 'pwned'}']\n")
    with pytest.raises(DataError, match=r"evil\.yaml: invalid YAML: could not determine a "
                       "constructor for the tag"):
        experiment.from_yaml(evil)
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(DataError, match="a YAML mapping, not a list"):
        experiment.from_yaml(tmp_path / "list.yaml")
    (tmp_path / "lr.yaml").write_text("trainer:\n  train_steps: 7\n  optimizer_config:\n"
                                      "    learning_rate:\n      type: constant\n"
                                      "      constant:\n        learning_rate: 1.0e-05\n")
    exp = experiment.from_yaml(tmp_path / "lr.yaml")
    assert exp.params.trainer.train_steps == 7
    assert exp.params.trainer.optimizer_config.learning_rate.constant.learning_rate == 1e-05
