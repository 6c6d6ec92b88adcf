"""torchvision's resize, anchors and the training parser, checked against torchvision's rules.

Written out here from torchvision 0.29's sources (``GeneralizedRCNNTransform``,
``AnchorGenerator``), independently of tfmask's implementation; the
end-to-end equivalence is tests/modeling/torchvision/test_equivalence.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from tfmask.modeling.torchvision import ops
from tfmask.modeling.torchvision.inputs import (TorchvisionParser, TorchvisionPreprocessing,
                                                canvas_anchors, resize)


@pytest.mark.parametrize("hw,min_size,max_size", [
    ((480, 640), 800, 1333), ((640, 480), 800, 1333), ((300, 1200), 800, 1333),
    ((333, 500), 800, 1333), ((150, 200), 160, 256), ((7, 5), 800, 1333),
])
def test_resize_is_torchvisions_rule(hw, min_size, max_size):
    scale = min(min_size / min(hw), max_size / max(hw))  # Python floats, as torchvision
    expected = [math.floor(side * scale) for side in hw]
    canvas = (-(-max(expected) // 64) * 64,) * 2
    image = tf.random.stateless_uniform([*hw, 3], (1, 2))
    out, info = resize(image, min_size, max_size, canvas)
    assert info.numpy()[1].tolist() == expected
    np.testing.assert_allclose(info.numpy()[2], np.float32(expected) / np.float32(hw))
    assert out.shape == (*canvas, 3)
    want = tf.image.resize(image, expected, method="bilinear", antialias=False)
    np.testing.assert_array_equal(out[:expected[0], :expected[1]].numpy(), want.numpy())
    assert not out.numpy()[expected[0]:].any() and not out.numpy()[:, expected[1]:].any()


def test_anchors_are_torchvisions():
    # generate_anchors: ratios h/w 0.5, 1, 2 of one size, [-w, -h, w, h] / 2 rounded.
    np.testing.assert_array_equal(ops.cell_anchors(32),  # as [y1, x1, y2, x2]
                                  [[-11, -23, 11, 23], [-16, -16, 16, 16], [-23, -11, 23, 11]])
    np.testing.assert_array_equal(ops.cell_anchors(512)[0], [-181, -362, 181, 362])
    # A 224 px canvas: P6 has 4 cells, so its stride is 224 // 4 = 56, not 64.
    anchors = canvas_anchors((224, 224))
    assert {k: v.shape.as_list() for k, v in anchors.items()} == {
        "2": [56, 56, 12], "3": [28, 28, 12], "4": [14, 14, 12], "5": [7, 7, 12], "6": [4, 4, 12]}
    p6 = anchors["6"].numpy().reshape(4, 4, 3, 4)
    np.testing.assert_array_equal(p6[1, 2, 1], [56 - 256, 112 - 256, 56 + 256, 112 + 256])
    p2 = anchors["2"].numpy().reshape(56, 56, 3, 4)
    np.testing.assert_array_equal(p2[0, 1, 0], [-11, 4 - 23, 11, 4 + 23])  # cell corners


def _example(h=60, w=80):
    masks = np.zeros((2, h, w), np.float32)
    masks[0, 10:30, 20:50] = 1
    masks[1, 35:55, 5:25] = 1
    return {
        "image": tf.constant(np.random.default_rng(0).integers(0, 255, (h, w, 3)), tf.uint8),
        "groundtruth_classes": tf.constant([1, 2], tf.int64),
        "groundtruth_boxes": tf.constant([[10 / h, 20 / w, 30 / h, 50 / w],
                                          [35 / h, 5 / w, 55 / h, 25 / w]], tf.float32),
        "groundtruth_instance_masks": tf.constant(masks),
        "groundtruth_is_crowd": tf.constant([False, False]),
        "groundtruth_area": tf.constant([600.0, 400.0]),
        "source_id": tf.constant("1"), "height": tf.constant(h), "width": tf.constant(w),
    }


def _parser():
    return TorchvisionParser(
        min_size=96, max_size=128, output_size=[128, 128], min_level=2, max_level=6,
        num_scales=1, aspect_ratios=[0.5, 1.0, 2.0], anchor_size=8.0,
        rpn_match_threshold=0.7, rpn_unmatched_threshold=0.3, rpn_batch_size_per_im=256,
        rpn_fg_fraction=0.5, aug_rand_hflip=False, max_num_instances=10, include_mask=True,
        mask_crop_size=28)


def test_training_parser_uses_torchvisions_resize_and_anchors():
    image, labels = _parser()._parse_train_data(_example())
    assert image.shape == (128, 128, 3)
    info = labels["image_info"].numpy()
    assert info[1].tolist() == [96, 128]  # 60x80 -> min(96/60, 128/80) = 1.6 -> 96x128
    np.testing.assert_allclose(labels["gt_boxes"].numpy()[:2],
                               [[16, 32, 48, 80], [56, 8, 88, 40]], atol=1e-4)
    assert labels["gt_classes"].numpy()[:3].tolist() == [1, 2, -1]
    for level, boxes in canvas_anchors((128, 128)).items():
        np.testing.assert_array_equal(labels["anchor_boxes"][level].numpy(), boxes.numpy())
        assert labels["rpn_score_targets"][level].shape[:2] == boxes.shape[:2]
    positives = sum(int((t.numpy() == 1).sum()) for t in labels["rpn_score_targets"].values())
    assert positives > 0  # anchors of torchvision's geometry match the boxes
    assert labels["gt_masks"].shape == (10, 28, 28)
    assert labels["gt_masks"].numpy()[0].mean() > 0.9  # the box's region of its mask


def test_eval_parser_and_export_preprocessing_agree():
    image, labels = _parser()._parse_eval_data(_example())
    prep = TorchvisionPreprocessing((128, 128), (128, 128), 2, 6, 1, (0.5, 1.0, 2.0), 8.0,
                                    96, 128)
    canvas, info = prep.image(_example()["image"])
    np.testing.assert_allclose(image.numpy(), canvas.numpy(), atol=1e-5)
    np.testing.assert_array_equal(labels["image_info"].numpy(), info.numpy())
    # The export runs torchvision's batch: the largest image, rounded up to 32 px.
    batch = prep.batch(tf.stack([canvas, canvas]), tf.stack([info, info]))
    assert batch.shape == (2, 96, 128, 3)
