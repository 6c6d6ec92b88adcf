"""torchvision's Mask R-CNN R50-FPN (v1 and v2) assembled as a Model Garden ``MaskRCNNModel``.

Model Garden's ``MaskRCNNModel`` runs the stages (backbone, decoder, RPN head,
ROI generator, ROI sampler, ROI aligner, box head, detection generator, mask
branch) and its task trains them; tfmask supplies torchvision's computation for
each stage Model Garden computes differently:

* backbone and decoder: :mod:`.backbone`; heads: :mod:`.heads`;
* :class:`Proposals` (``roi_generator``) — ``RegionProposalNetwork.filter_proposals``:
  torchvision's anchors (:func:`.ops.grid_anchors`, made here from the feature
  sizes, so the ``anchor_boxes`` argument is not used), per level the top
  ``pre_nms_top_n`` objectness logits, decoded, clipped, boxes under 1e-3 px
  and scores under ``score_threshold`` dropped, NMS per level, then the best
  ``post_nms_top_n`` of all levels;
* :class:`RoIAlign` (``roi_aligner``, ``mask_roi_aligner``) — :func:`.ops.roi_align`;
* :class:`Detections` (``detection_generator``) —
  ``RoIHeads.postprocess_detections``: softmax, class-specific boxes decoded
  with weights 10/10/5/5 and clipped, the background dropped, scores above
  ``score_threshold``, boxes of at least 1e-2 px, NMS per class, the best
  ``max_detections``.

Model Garden's ROI and mask samplers, losses and training loop are used as
they are. Padding proposals (an image with fewer than ``post_nms_top_n``) are
all-zero boxes: :class:`Detections` ignores them (torchvision has none).

Built from a Model Garden model config whose ``backbone.type`` is
``torchvision_resnet50_fpn`` (:func:`build_model`).
"""

from __future__ import annotations

from typing import Dict, Optional

import tensorflow as tf
import tf_keras
from official.vision.modeling import maskrcnn_model
from official.vision.modeling.layers import mask_sampler, roi_sampler

from tfmask.errors import ConfigError
from tfmask.modeling.torchvision import ops
from tfmask.modeling.torchvision.backbone import FPN, ResNetBody
from tfmask.modeling.torchvision.heads import BoxHead, MaskHead, RPNHead

BACKBONE_TYPE = "torchvision_resnet50_fpn"
VERSIONS = ("v1", "v2")
RPN_MIN_SIZE = 1e-3  # torchvision's RegionProposalNetwork.min_size
BOX_MIN_SIZE = 1e-2  # RoIHeads.postprocess_detections' remove_small_boxes


def default_epsilon(version: str) -> float:
    """BatchNorm epsilon: 0.0 for v1 (``overwrite_eps`` of its COCO weights), else 1e-5."""
    return 0.0 if version == "v1" else 1e-5


class Proposals(tf_keras.layers.Layer):
    """``filter_proposals``; Model Garden's ``roi_generator`` interface.

    Args:
      pre_nms_top_n, post_nms_top_n: training values (torchvision: 2000, 2000).
      test_pre_nms_top_n, test_post_nms_top_n: inference values (1000, 1000).
      nms_iou_threshold: per-level NMS IoU (0.7).
      score_threshold: minimum objectness probability (0.0).
    """

    def __init__(self, pre_nms_top_n=2000, post_nms_top_n=2000, test_pre_nms_top_n=1000,
                 test_post_nms_top_n=1000, nms_iou_threshold=0.7, test_nms_iou_threshold=0.7,
                 score_threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self._train = (pre_nms_top_n, post_nms_top_n, nms_iou_threshold)
        self._test = (test_pre_nms_top_n, test_post_nms_top_n, test_nms_iou_threshold)
        self._score_threshold = score_threshold

    def call(self, raw_boxes: Dict[str, tf.Tensor], raw_scores: Dict[str, tf.Tensor],
             anchor_boxes=None, image_shape: Optional[tf.Tensor] = None, training=None):
        """Returns rois [B, post_nms_top_n, 4] ``box_yxyx_px`` and their scores [B, P]."""
        pre_n, post_n, iou = self._train if training else self._test
        levels = sorted(raw_scores, key=int)
        first = tf.shape(raw_scores[levels[0]])
        padded_hw = first[1:3] * (2 ** int(levels[0]))  # the padded input, a multiple of 32
        per_level = []  # (boxes [B, k, 4], logits [B, k]) of each level's top k
        for level in levels:
            shape = tf.shape(raw_scores[level])
            n = shape[1] * shape[2] * shape[3]
            logits = tf.reshape(raw_scores[level], [shape[0], n])
            deltas = tf.reshape(raw_boxes[level], [shape[0], n, 4])
            anchors = ops.grid_anchors(shape[1:3], padded_hw, ops.ANCHOR_SIZES[int(level)])
            k = tf.minimum(pre_n, n)
            top, idx = tf.math.top_k(tf.cast(logits, tf.float32), k)
            boxes = ops.decode(tf.gather(tf.cast(deltas, tf.float32), idx, batch_dims=1),
                               tf.gather(anchors, idx))
            per_level.append((ops.clip(boxes, tf.cast(image_shape, tf.float32)[:, None, :]),
                              top))
        thr = self._score_threshold

        def one_image(i):
            kept_boxes, kept_scores = [], []
            for boxes, logits in per_level:
                b, prob = boxes[i], tf.sigmoid(logits[i])
                ok = ((b[:, 2] - b[:, 0]) >= RPN_MIN_SIZE) & \
                    ((b[:, 3] - b[:, 1]) >= RPN_MIN_SIZE) & (prob >= thr)
                b, prob = tf.boolean_mask(b, ok), tf.boolean_mask(prob, ok)
                keep = tf.image.non_max_suppression(b, prob, tf.shape(prob)[0], iou)
                kept_boxes.append(tf.gather(b, keep))
                kept_scores.append(tf.gather(prob, keep))
            b, s = tf.concat(kept_boxes, 0), tf.concat(kept_scores, 0)
            s, order = tf.math.top_k(s, tf.minimum(post_n, tf.shape(s)[0]))
            pad = post_n - tf.shape(s)[0]
            return (tf.pad(tf.gather(b, order), [[0, pad], [0, 0]]), tf.pad(s, [[0, pad]]))

        rois, scores = tf.map_fn(one_image, tf.range(first[0]),
                                 fn_output_signature=(tf.TensorSpec([post_n, 4], tf.float32),
                                                      tf.TensorSpec([post_n], tf.float32)))
        return tf.stop_gradient(rois), tf.stop_gradient(scores)


class RoIAlign(tf_keras.layers.Layer):
    """``MultiScaleRoIAlign`` (sampling ratio 2); Model Garden's ``roi_aligner`` interface."""

    def __init__(self, crop_size: int = 7, sampling_ratio: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.crop_size, self.sampling_ratio = crop_size, sampling_ratio

    def call(self, features, boxes, training=None):
        return ops.roi_align(features, tf.cast(boxes, tf.float32), self.crop_size,
                             self.sampling_ratio)


class Detections(tf_keras.layers.Layer):
    """``postprocess_detections``; Model Garden's ``detection_generator`` interface."""

    def __init__(self, score_threshold: float = 0.05, nms_iou_threshold: float = 0.5,
                 max_detections: int = 100, **kwargs):
        super().__init__(**kwargs)
        self._score_threshold = score_threshold
        self._iou = nms_iou_threshold
        self._max = max_detections

    def get_config(self):
        return {"apply_nms": True, "score_threshold": self._score_threshold,
                "nms_iou_threshold": self._iou, "max_detections": self._max}

    def call(self, raw_boxes, raw_scores, anchor_boxes, image_shape, regression_weights=None,
             bbox_per_class=True, training=None):
        """``anchor_boxes`` are the ROIs [B, N, 4]; returns Model Garden's detection dict."""
        shape = tf.shape(raw_scores)  # [B, N, K]
        k = raw_scores.shape[-1]
        probs = tf.nn.softmax(tf.cast(raw_scores, tf.float32), axis=-1)
        deltas = tf.reshape(tf.cast(raw_boxes, tf.float32), [shape[0], shape[1], k, 4])
        rois = tf.cast(anchor_boxes, tf.float32)
        boxes = ops.decode(deltas, rois[:, :, None, :], ops.BOX_WEIGHTS)
        boxes = ops.clip(boxes, tf.cast(image_shape, tf.float32)[:, None, None, :])[:, :, 1:]
        probs = probs[:, :, 1:]
        real_roi = ((rois[..., 2] - rois[..., 0]) >= RPN_MIN_SIZE) & \
            ((rois[..., 3] - rois[..., 1]) >= RPN_MIN_SIZE)
        ok = (probs > self._score_threshold) & real_roi[:, :, None] & \
            ((boxes[..., 2] - boxes[..., 0]) >= BOX_MIN_SIZE) & \
            ((boxes[..., 3] - boxes[..., 1]) >= BOX_MIN_SIZE)
        scores = tf.where(ok, probs, -1.0)  # below the NMS score floor: never selected
        out_boxes, out_scores, out_classes, count = tf.image.combined_non_max_suppression(
            boxes, scores, max_output_size_per_class=self._max, max_total_size=self._max,
            iou_threshold=self._iou, score_threshold=0.0, pad_per_class=False,
            clip_boxes=False)
        valid = tf.range(self._max)[None, :] < count[:, None]
        return {
            "detection_boxes": tf.where(valid[..., None], out_boxes, 0.0),
            "detection_scores": tf.where(valid, out_scores, 0.0),
            "detection_classes": tf.where(valid, tf.cast(out_classes, tf.int32) + 1, 0),
            "num_detections": count,
        }


class TorchvisionMaskRCNN(maskrcnn_model.MaskRCNNModel):
    """Model Garden's ``MaskRCNNModel`` with torchvision's stages; ``version`` v1 or v2.

    :meth:`torch_params` maps torchvision state-dict keys to the variables.
    """

    def __init__(self, *args, version: str = "v1", **kwargs):
        super().__init__(*args, **kwargs)
        self.version = version

    def _call_box_outputs(self, images, image_shape, anchor_boxes=None, **kwargs):
        # Proposals makes its own anchors; {} keeps Model Garden from building its own.
        return super()._call_box_outputs(images, image_shape,
                                         anchor_boxes=anchor_boxes or {}, **kwargs)

    def torch_params(self):
        out = dict(self.backbone.torch_params())
        out.update(self.decoder.torch_params())
        out.update(self.rpn_head.torch_params())
        out.update(self.detection_head[0].torch_params())
        out.update(self.mask_head.torch_params())
        return out


def _check_fixed_settings(model_config) -> None:
    """torchvision's levels and anchors are built in; other values in the config are errors."""
    a = model_config.anchor
    fixed = {"min_level": (model_config.min_level, 2), "max_level": (model_config.max_level, 6),
             "anchor.anchor_size (anchor_scale)": (a.anchor_size, 8.0),
             "anchor.num_scales (scales_per_octave)": (a.num_scales, 1),
             "anchor.aspect_ratios": (sorted(a.aspect_ratios), list(ops.ASPECT_RATIOS))}
    bad = [f"{k} {got} (torchvision's is {want})" for k, (got, want) in fixed.items()
           if got != want]
    if bad:
        raise ConfigError("torchvision's Mask R-CNN has fixed FPN levels and anchors: "
                          + "; ".join(bad))


def build_model(model_config, l2_regularizer=None) -> TorchvisionMaskRCNN:
    """The Model Garden ``MaskRCNN`` config -> :class:`TorchvisionMaskRCNN` (not yet built).

    Read from the config: ``num_classes``, ``backbone.torchvision_resnet50_fpn``
    (version, BatchNorm epsilon, trainable layers), the FPN width, the RPN
    proposal counts and NMS, the ROI sampler, crop sizes, the box head's
    convs/fcs, the mask head's convs/width and the detection generator's score
    threshold, NMS IoU and detection count. Levels (2-6), anchors and sampling
    ratio are torchvision's.
    """
    tv = model_config.backbone.get()
    version = tv.version
    if version not in VERSIONS:
        raise ConfigError(f"torchvision_resnet50_fpn.version {version!r}; valid: v1, v2")
    _check_fixed_settings(model_config)
    eps = default_epsilon(version) if tv.norm_epsilon is None else float(tv.norm_epsilon)
    v2 = version == "v2"
    width = model_config.decoder.fpn.num_filters
    reg = l2_regularizer
    num_classes = model_config.num_classes
    rg, det, box = (model_config.roi_generator, model_config.detection_generator,
                    model_config.detection_head)
    rs = model_config.roi_sampler
    return TorchvisionMaskRCNN(
        backbone=ResNetBody(eps, tv.trainable_layers, kernel_regularizer=reg, name="backbone"),
        decoder=FPN(width, norm=v2, epsilon=eps, kernel_regularizer=reg, name="decoder"),
        rpn_head=RPNHead(depth=2 if v2 else 1, width=width, kernel_regularizer=reg,
                         name="rpn_head"),
        detection_head=BoxHead(num_classes, convs=box.num_convs, conv_width=box.num_filters,
                               fcs=box.num_fcs, fc_width=box.fc_dims, norm=v2, epsilon=eps,
                               in_channels=width, crop_size=model_config.roi_aligner.crop_size,
                               kernel_regularizer=reg, name="detection_head"),
        roi_generator=Proposals(rg.num_proposals, rg.num_proposals, rg.test_num_proposals,
                                rg.test_num_proposals, rg.nms_iou_threshold,
                                rg.test_nms_iou_threshold, rg.test_pre_nms_score_threshold,
                                name="roi_generator"),
        roi_sampler=roi_sampler.ROISampler(
            mix_gt_boxes=rs.mix_gt_boxes, num_sampled_rois=rs.num_sampled_rois,
            foreground_fraction=rs.foreground_fraction,
            foreground_iou_threshold=rs.foreground_iou_threshold,
            background_iou_high_threshold=rs.background_iou_high_threshold,
            background_iou_low_threshold=rs.background_iou_low_threshold),
        roi_aligner=RoIAlign(model_config.roi_aligner.crop_size, name="roi_aligner"),
        detection_generator=Detections(det.pre_nms_score_threshold, det.nms_iou_threshold,
                                       det.max_num_detections, name="detection_generator"),
        mask_head=MaskHead(num_classes, model_config.mask_head.num_convs,
                           model_config.mask_head.num_filters, norm=v2, epsilon=eps,
                           kernel_regularizer=reg, name="mask_head"),
        mask_sampler=mask_sampler.MaskSampler(
            mask_target_size=2 * model_config.mask_roi_aligner.crop_size,
            num_sampled_masks=model_config.mask_sampler.num_sampled_masks),
        mask_roi_aligner=RoIAlign(model_config.mask_roi_aligner.crop_size,
                                  name="mask_roi_aligner"),
        min_level=2, max_level=6, num_scales=1, aspect_ratios=list(ops.ASPECT_RATIOS),
        anchor_size=8.0, version=version)
