"""Proposals computed in float32 under a mixed-precision policy.

tfmask's translation sets Model Garden's ``roi_generator.use_batched_nms``: each
FPN level's proposals go through TensorFlow's ``CombinedNonMaxSuppression``
kernel instead of Model Garden's padded, tiled NMS (the same greedy NMS;
``tests/modeling/test_proposal_nms.py``), ~100 ms less per 512 px ResNet-50-FPN
image on 2 CPU cores. That kernel takes float32 boxes and scores only, while
under ``--mixed_precision bfloat16`` the RPN's outputs are bfloat16.
:class:`Float32Proposals` decodes, clips and suppresses in float32 and rounds
the ROIs to the RPN's dtype at the end, so the rest of the model gets what it
got before.
"""

from __future__ import annotations

from typing import Dict, Optional

import tensorflow as tf
from official.vision.modeling import maskrcnn_model
from official.vision.modeling.layers import roi_generator

from tfmask.modeling.rebuild import recast, with_layers


def _float32(levels: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return {level: tf.cast(value, tf.float32) for level, value in levels.items()}


class Float32Proposals(roi_generator.MultilevelROIGenerator):
    """Model Garden's ``MultilevelROIGenerator``, computing in float32.

    ``call`` takes Model Garden's arguments: level -> raw box deltas
    [B, h, w, 4 * A], raw scores [B, h, w, A] and anchors [B, h, w, 4 * A]
    (``[ymin, xmin, ymax, xmax]`` model-frame pixels), ``image_shape`` [B, 2];
    returns ROIs [B, K, 4] (same convention) and scores [B, K] in the dtype of
    the raw scores.
    """

    def call(self, raw_boxes: Dict[str, tf.Tensor], raw_scores: Dict[str, tf.Tensor],
             anchor_boxes: Dict[str, tf.Tensor], image_shape: tf.Tensor,
             training: Optional[bool] = None):
        dtype = next(iter(raw_scores.values())).dtype
        rois, scores = super().call(_float32(raw_boxes), _float32(raw_scores),
                                    _float32(anchor_boxes), tf.cast(image_shape, tf.float32),
                                    training=training)
        return tf.cast(rois, dtype), tf.cast(scores, dtype)


def float32_proposals(model: maskrcnn_model.MaskRCNNModel) -> maskrcnn_model.MaskRCNNModel:
    """``model`` (not yet called) with :class:`Float32Proposals` where its proposals use
    TF's CombinedNonMaxSuppression (``use_batched_nms``); the other layers are the same
    objects. Other proposal layers (the padded NMS, torchvision's) are kept."""
    layer = model.roi_generator
    if type(layer) is not roi_generator.MultilevelROIGenerator:  # noqa: E721
        return model
    if not layer.get_config()["use_batched_nms"]:
        return model
    return with_layers(model, roi_generator=recast(layer, Float32Proposals))
