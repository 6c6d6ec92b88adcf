"""Proposals through TF's CombinedNonMaxSuppression (``roi_generator.use_batched_nms``,
what tfmask's translation sets) against Model Garden's padded NMS (its default).

Both run the same greedy NMS on each FPN level. The padded NMS first keeps the
``pre_nms_top_k`` best boxes of a level; the combined kernel considers the whole
level and stops once ``num_proposals`` are kept. Greedy NMS decides each box from
the better-scoring ones only, so the padded result is a prefix of the combined one:
equal whenever the padded NMS keeps ``num_proposals`` boxes, or when
``pre_nms_top_k`` covers every anchor.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

LEVELS = {3: (8, 8), 4: (4, 4), 5: (2, 2)}  # level -> feature [h, w] of a 64 px frame
ANCHORS_PER_CELL = 3


def _inputs(seed: int):
    """RPN outputs for one image: level -> raw box deltas, raw scores, anchors (px)."""
    rng = np.random.default_rng(seed)
    boxes, scores, anchors = {}, {}, {}
    for level, (h, w) in LEVELS.items():
        stride = 2 ** level
        ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        cells = []
        for size in (2.0, 3.0, 4.0):  # three anchors per cell, in strides
            half = size * stride / 2
            cy, cx = (ys + 0.5) * stride, (xs + 0.5) * stride
            cells.append(np.stack([cy - half, cx - half, cy + half, cx + half], -1))
        anchors[str(level)] = tf.constant(np.concatenate(cells, -1)[None], tf.float32)
        boxes[str(level)] = tf.constant(
            rng.normal(0, 0.3, (1, h, w, 4 * ANCHORS_PER_CELL)), tf.float32)
        scores[str(level)] = tf.constant(
            rng.normal(0, 2, (1, h, w, ANCHORS_PER_CELL)), tf.float32)
    return boxes, scores, anchors


def _proposals(use_batched_nms: bool, pre_nms_top_k: int, num_proposals: int, seed: int):
    from official.vision.modeling.layers.roi_generator import MultilevelROIGenerator

    layer = MultilevelROIGenerator(
        test_pre_nms_top_k=pre_nms_top_k, test_num_proposals=num_proposals,
        test_nms_iou_threshold=0.5, use_batched_nms=use_batched_nms)
    boxes, scores, anchors = _inputs(seed)
    rois, roi_scores = layer(boxes, scores, anchors, tf.constant([[64.0, 64.0]]),
                             training=False)
    return rois.numpy()[0], roi_scores.numpy()[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_proposals_when_the_top_k_covers_every_anchor(seed):
    anchors = max(h * w for h, w in LEVELS.values()) * ANCHORS_PER_CELL  # 192
    padded = _proposals(False, anchors, 40, seed)
    combined = _proposals(True, anchors, 40, seed)
    kept = padded[1] > 0
    assert kept.sum() > 10  # the NMS kept boxes and suppressed others
    np.testing.assert_allclose(combined[0], padded[0], atol=1e-4)
    np.testing.assert_allclose(combined[1], padded[1], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_padded_proposals_are_a_prefix_of_the_combined_ones(seed):
    """With a small pre-NMS top-k the combined kernel keeps looking past it."""
    padded_rois, padded_scores = _proposals(False, 12, 200, seed)
    rois, scores = _proposals(True, 12, 200, seed)
    n = int((padded_scores > 0).sum())
    assert 0 < n < int((scores > 0).sum())  # the combined NMS found more boxes
    # Each padded proposal is among the combined ones, with the same box and score.
    for box, score in zip(padded_rois[:n], padded_scores[:n]):
        i = int(np.argmin(np.abs(scores - score)))
        assert scores[i] == pytest.approx(score, abs=1e-6)
        np.testing.assert_allclose(rois[i], box, atol=1e-4)
