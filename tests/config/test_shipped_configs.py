"""Every shipped pipeline.config translates with every field honoured and builds its model."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.config"))


def test_configs_are_shipped():
    names = {p.name for p in CONFIGS}
    assert {"mask_rcnn_tiny_cpu.config", "mask_rcnn_resnet50_fpn_640x640.config",
            "mask_rcnn_resnet101_fpn_1024x1024.config"} <= names


# The big models take minutes to build on 2 cores: in the slow set (make test-all).
_BIG = ("inception_resnet_v2", "resnet101")
PARAMS = [pytest.param(p, marks=pytest.mark.slow) if any(b in p.stem for b in _BIG) else p
          for p in CONFIGS]


@pytest.mark.parametrize("path", PARAMS, ids=lambda p: p.stem)
def test_config_translates_and_builds(path, tmp_path):
    from official.core import task_factory

    from tfmask.config.translate import translate

    # The configs point at ../dataset/records; give the copy a label map of its own.
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "label_map.pbtxt").write_text(
        "item { id: 1 name: 'speaker' } item { id: 2 name: 'cup' } item { id: 3 name: 'bottle' }")
    (tmp_path / "configs").mkdir()
    copy = tmp_path / "configs" / path.name
    copy.write_text(path.read_text().replace("../dataset/records", "../records"))
    t = translate(copy)
    assert t.ignored == []
    params = t.params
    task = task_factory.get_task(params.task, logging_dir=str(tmp_path))
    model = task.build_model()
    h, w, _ = params.task.model.input_size
    images = tf.zeros([1, h, w, 3])
    # A forward pass in inference mode proves the levels line up.
    from official.vision.ops import anchor

    anchor_boxes = anchor.Anchor(
        min_level=params.task.model.min_level, max_level=params.task.model.max_level,
        num_scales=params.task.model.anchor.num_scales,
        aspect_ratios=params.task.model.anchor.aspect_ratios,
        anchor_size=params.task.model.anchor.anchor_size, image_size=(h, w)).multilevel_boxes
    anchor_boxes = {k: tf.expand_dims(v, 0) for k, v in anchor_boxes.items()}
    out = model(images, image_shape=tf.constant([[h, w]], tf.float32),
                anchor_boxes=anchor_boxes, training=False)
    assert out["detection_boxes"].shape[0] == 1
    assert np.isfinite(out["detection_scores"].numpy()).all()
