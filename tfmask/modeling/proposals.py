"""The box stages of Model Garden's Mask R-CNN in float32 under a mixed-precision policy.

Under ``--mixed_precision bfloat16`` (Keras' ``mixed_bfloat16``) the RPN and the
box head put out bfloat16.

* :class:`Float32Proposals`: tfmask's translation sets Model Garden's
  ``roi_generator.use_batched_nms``, so each FPN level's proposals go through
  TensorFlow's ``CombinedNonMaxSuppression`` kernel instead of Model Garden's
  padded NMS (the same greedy NMS, ``tests/modeling/test_proposal_nms.py``; ~100 ms
  less per 512 px ResNet-50-FPN image on 2 CPU cores). The kernel takes float32
  only, so this layer decodes, clips and suppresses in float32, and its ROIs and
  scores stay float32, as Model Garden's padded path gives them (its anchors are
  float32). Until 2026-12-04 tfmask rounded them to bfloat16 here: pixel
  coordinates in bfloat16 (8 significant bits) move by up to 1 px between 128 and
  256, 2 px up to 512 and 4 px up to 1024, and every ROI align window, box target
  and final box decoded from them moved too. On the demo's model the bfloat16
  export's boxes were ~2 px off the float32 export's (0.2 px now) and its mask
  AP 1.2 points lower (0.6 now; ``tfmask/bench/peers_accuracy.py``).
* :class:`Float32Detections`: Model Garden's detection generator turns the box
  head's class logits into scores with a softmax in their dtype; in bfloat16 the
  scores round to steps of ~0.4% (``nms_version: v2``), and its ``batched`` NMS,
  the same combined kernel, refuses them. This one decodes and scores in float32.

The ROI aligners then sample bfloat16 features at float32 positions. In float32
both layers compute what Model Garden's do.
"""

from __future__ import annotations

from typing import Dict, Optional

import tensorflow as tf
from official.vision.modeling import maskrcnn_model
from official.vision.modeling.layers import detection_generator, roi_generator

from tfmask.modeling.rebuild import recast, with_layers


def _float32(levels: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return {level: tf.cast(value, tf.float32) for level, value in levels.items()}


class Float32Proposals(roi_generator.MultilevelROIGenerator):
    """Model Garden's ``MultilevelROIGenerator``, computing in float32.

    ``call`` takes Model Garden's arguments: level -> raw box deltas
    [B, h, w, 4 * A], raw scores [B, h, w, A] and anchors [B, h, w, 4 * A]
    (``[ymin, xmin, ymax, xmax]`` model-frame pixels), ``image_shape`` [B, 2];
    returns ROIs [B, K, 4] (same convention) and scores [B, K], float32 whatever the
    policy.
    """

    def call(self, raw_boxes: Dict[str, tf.Tensor], raw_scores: Dict[str, tf.Tensor],
             anchor_boxes: Dict[str, tf.Tensor], image_shape: tf.Tensor,
             training: Optional[bool] = None):
        return super().call(_float32(raw_boxes), _float32(raw_scores),
                            _float32(anchor_boxes), tf.cast(image_shape, tf.float32),
                            training=training)


class Float32Detections(detection_generator.DetectionGenerator):
    """Model Garden's ``DetectionGenerator`` on float32 inputs.

    Takes Model Garden's arguments: box deltas [B, K, num_classes * 4], class logits
    [B, K, num_classes] (any float dtype), ROIs [B, K, 4] (model-frame pixels,
    ``[ymin, xmin, ymax, xmax]``), ``image_shape`` [B, 2]; returns Model Garden's
    detections, boxes and scores float32.
    """

    def __call__(self, raw_boxes: tf.Tensor, raw_scores: tf.Tensor, anchor_boxes: tf.Tensor,
                 image_shape: tf.Tensor, regression_weights=None, bbox_per_class: bool = True):
        return super().__call__(tf.cast(raw_boxes, tf.float32), tf.cast(raw_scores, tf.float32),
                                tf.cast(anchor_boxes, tf.float32),
                                None if image_shape is None else tf.cast(image_shape, tf.float32),
                                regression_weights=regression_weights,
                                bbox_per_class=bbox_per_class)


def float32_box_stages(model: maskrcnn_model.MaskRCNNModel) -> maskrcnn_model.MaskRCNNModel:
    """``model`` (not yet called) with :class:`Float32Proposals` where its proposals use
    TF's CombinedNonMaxSuppression (``use_batched_nms``) and :class:`Float32Detections`
    in place of Model Garden's detection generator; the other layers are the same
    objects. Layers of other classes (torchvision's) are kept."""
    layers = {}
    proposals = model.roi_generator
    if (type(proposals) is roi_generator.MultilevelROIGenerator  # noqa: E721
            and proposals.get_config()["use_batched_nms"]):
        layers["roi_generator"] = recast(proposals, Float32Proposals)
    if type(model.detection_generator) is detection_generator.DetectionGenerator:  # noqa: E721
        layers["detection_generator"] = recast(model.detection_generator, Float32Detections)
    return with_layers(model, **layers) if layers else model
