"""tfmask/modeling/proposals.py: the proposal and detection layers compute in float32
under a bfloat16 policy, and return float32 boxes (bfloat16 pixel coordinates move by
1-2 px at 128-512)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from test_proposal_nms import _inputs


def _cast(levels, dtype):
    return {level: tf.cast(value, dtype) for level, value in levels.items()}


@pytest.mark.parametrize("batched", [True, False])
def test_float32_proposals_under_a_bfloat16_policy_equal_the_float32_layer(batched):
    """The combined kernel refuses bfloat16 (Model Garden's layer fails under the
    policy); tfmask's layer suppresses in float32 and keeps its ROIs float32."""
    from official.vision.modeling.layers.roi_generator import MultilevelROIGenerator

    from tfmask.modeling.proposals import Float32Proposals

    boxes, scores, anchors = _inputs(0)
    args = (_cast(boxes, tf.bfloat16), _cast(scores, tf.bfloat16), anchors,
            tf.constant([[64.0, 64.0]]))
    kwargs = dict(test_pre_nms_top_k=192, test_num_proposals=40, test_nms_iou_threshold=0.5,
                  use_batched_nms=batched, dtype="mixed_bfloat16")
    if batched:
        with pytest.raises(tf.errors.InvalidArgumentError, match="CombinedNonMaxSuppression"):
            MultilevelROIGenerator(**kwargs)(*args, training=False)
    else:  # Model Garden's padded NMS runs, and decodes in its float32 anchors' dtype
        rois, _ = MultilevelROIGenerator(**kwargs)(*args, training=False)
        assert rois.dtype == tf.float32
    rois, roi_scores = Float32Proposals(**kwargs)(*args, training=False)
    assert rois.dtype == roi_scores.dtype == tf.float32
    # The float32 layer on the same (bfloat16-rounded) RPN outputs.
    want_rois, want_scores = MultilevelROIGenerator(**{**kwargs, "dtype": "float32"})(
        *(_cast(a, tf.float32) for a in args[:3]), args[3], training=False)
    np.testing.assert_array_equal(rois.numpy(), want_rois.numpy())
    np.testing.assert_array_equal(roi_scores.numpy(), want_scores.numpy())
    # Not what a bfloat16 round trip would give: the coordinates keep their fraction.
    assert not np.array_equal(rois.numpy(), tf.cast(tf.cast(rois, tf.bfloat16),
                                                    tf.float32).numpy())


def test_float32_detections_equal_the_float32_generator_on_bfloat16_head_outputs():
    from official.vision.modeling.layers.detection_generator import DetectionGenerator

    from tfmask.modeling.proposals import Float32Detections

    rng = np.random.default_rng(3)
    num_rois, num_classes = 50, 4
    top_left = rng.uniform(0, 300, (1, num_rois, 2))
    rois = tf.constant(np.concatenate([top_left, top_left + rng.uniform(20, 200, (1, num_rois,
                                                                                   2))], -1),
                       tf.float32)
    deltas = tf.constant(rng.normal(0, 0.5, (1, num_rois, 4 * num_classes)), tf.bfloat16)
    logits = tf.constant(rng.normal(0, 3, (1, num_rois, num_classes)), tf.bfloat16)
    image_shape = tf.constant([[512.0, 512.0]])
    kwargs = dict(pre_nms_score_threshold=0.0, max_num_detections=20, nms_version="batched")
    got = Float32Detections(**kwargs, dtype="mixed_bfloat16")(deltas, logits, rois, image_shape)
    want = DetectionGenerator(**kwargs)(tf.cast(deltas, tf.float32), tf.cast(logits, tf.float32),
                                        rois, image_shape)
    assert got["detection_boxes"].dtype == got["detection_scores"].dtype == tf.float32
    assert int(got["num_detections"][0]) == int(want["num_detections"][0]) > 0
    for key in ("detection_boxes", "detection_scores", "detection_classes"):
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
    # Model Garden's generator on the same inputs: its combined NMS refuses them, and
    # its v2 NMS scores with a bfloat16 softmax (float32 out, bfloat16 values: ties).
    with pytest.raises(tf.errors.InvalidArgumentError, match="CombinedNonMaxSuppression"):
        DetectionGenerator(**kwargs)(deltas, logits, rois, image_shape)

    def bfloat16_values(scores):
        return np.array_equal(scores, tf.cast(tf.cast(scores, tf.bfloat16), tf.float32))

    raw = DetectionGenerator(**{**kwargs, "nms_version": "v2"})(deltas, logits, rois,
                                                                image_shape)
    assert bfloat16_values(raw["detection_scores"])
    assert not bfloat16_values(got["detection_scores"])


@pytest.mark.parametrize("batched", [True, False])
def test_the_factory_builds_float32_box_stages(batched):
    import tf_keras
    from official.core import exp_factory
    from official.vision.modeling.layers.roi_generator import MultilevelROIGenerator

    from tfmask.modeling import factory
    from tfmask.modeling.proposals import Float32Detections, Float32Proposals

    model_config = exp_factory.get_exp_config("maskrcnn_resnetfpn_coco").task.model
    model_config.roi_generator.use_batched_nms = batched
    model = factory.build_maskrcnn(tf_keras.layers.InputSpec(shape=[None, 256, 256, 3]),
                                   model_config)
    assert type(model.roi_generator) is (Float32Proposals if batched  # noqa: E721
                                         else MultilevelROIGenerator)
    assert type(model.detection_generator) is Float32Detections  # noqa: E721
    assert model.roi_generator.get_config()["use_batched_nms"] is batched
