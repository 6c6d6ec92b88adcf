"""Train the mask branch on foreground ROIs only, as torchvision and Detectron2 do.

Model Garden's ``MaskSampler`` hands the mask branch ``num_sampled_masks`` ROIs
per image (128 of a 512-ROI second-stage batch) whether or not that many are
foreground: ``tf.nn.top_k`` over the foreground indicator puts the foreground
ROIs first and fills the rest with background ROIs, whose mask loss weight is
0 (``MaskrcnnLoss`` weighs each ROI by ``class > 0``). The ROI align, the four
256-channel convolutions and the deconvolution still run, forward and
backward, on every one of them: on an image with a few objects, most of the
mask branch's training cost (measured at 640 px, R50-FPN: ~1.4 s of a 4.2 s
step) goes into ROIs that contribute nothing.

:class:`ForegroundMaskSampler` returns only the first ``n`` of each image's
sampled ROIs, ``n`` = the largest foreground count in the batch (at least 1):
every foreground ROI is still there and only zero-weight ROIs are dropped, so
the mask loss's numerator and its normaliser (the sum of weights) are those
of Model Garden's sampler. The ROI count becomes dynamic ``[B, n, ...]``;
:class:`ForegroundMaskHead` is Model Garden's ``MaskHead`` (same layers,
variables and checkpoint) taking that dynamic count. One difference remains
and is intended: the mask head's batch normalisation sees the foreground ROIs
(plus the padding of images with fewer than ``n``), not a batch that is mostly
background, so its statistics are those of the boxes it masks at inference.

Inference is unchanged (the mask branch runs on the detections there).
:func:`foreground_mask_training` swaps both into a built-but-uncalled Model
Garden ``MaskRCNNModel``::

    model = foreground_mask_training(factory.build_maskrcnn(input_specs, model_config))
"""

from __future__ import annotations

import tensorflow as tf
from official.vision.modeling import maskrcnn_model
from official.vision.modeling.heads import instance_heads
from official.vision.modeling.layers import mask_sampler

from tfmask.modeling.rebuild import recast, with_layers


def foreground_prefix(classes: tf.Tensor) -> tf.Tensor:
    """The number of leading ROIs to keep: the most ``classes > 0`` of any image of the
    ``[B, K]`` batch, at least 1 (an int32 scalar)."""
    per_image = tf.reduce_sum(tf.cast(classes > 0, tf.int32), axis=1)
    return tf.maximum(tf.reduce_max(tf.concat([per_image, [0]], axis=0)), 1)


class ForegroundMaskSampler(mask_sampler.MaskSampler):
    """Model Garden's ``MaskSampler`` cut to the ROIs that carry a mask loss.

    Returns ``rois`` [B, n, 4], ``classes`` [B, n] and ``masks`` [B, n, m, m]: the
    first ``n`` (:func:`foreground_prefix`) of the sampler's K per image, which
    holds all of each image's foreground ROIs (Model Garden's ``top_k`` puts them
    first, in index order).
    """

    def call(self, candidate_rois, candidate_gt_boxes, candidate_gt_classes,
             candidate_gt_indices, gt_masks):
        rois, classes, masks = super().call(candidate_rois, candidate_gt_boxes,
                                            candidate_gt_classes, candidate_gt_indices,
                                            gt_masks)
        n = foreground_prefix(classes)
        return rois[:, :n], classes[:, :n], masks[:, :n]


class ForegroundMaskHead(instance_heads.MaskHead):
    """Model Garden's ``MaskHead`` for a dynamic number of ROIs per image.

    ``inputs``: ROI features [B, N, h, w, C] (N static or not) and classes [B, N];
    returns logits [B, N, 2h, 2w] as Model Garden's head does. With N unknown the
    ROIs go through the head as a batch of B*N single-ROI images (the head reads
    N from the static shape).
    """

    def call(self, inputs, training=None):
        roi_features, roi_classes = inputs
        if roi_features.shape[1] is not None:
            return super().call(inputs, training=training)
        h, w, channels = roi_features.shape[2:]
        logits = super().call([tf.reshape(roi_features, [-1, 1, h, w, channels]),
                               tf.reshape(roi_classes, [-1, 1])], training=training)
        mask_hw = logits.shape[2:]
        logits = tf.reshape(logits, tf.concat([tf.shape(roi_classes)[:2], mask_hw], axis=0))
        logits.set_shape([roi_features.shape[0], None, *mask_hw])
        return logits


def foreground_mask_training(model: maskrcnn_model.MaskRCNNModel
                             ) -> maskrcnn_model.MaskRCNNModel:
    """``model`` (not yet called) with :class:`ForegroundMaskSampler` and, for Model
    Garden's head, :class:`ForegroundMaskHead`; the other layers are the same objects.
    A model without a mask branch, or with a head that already takes a dynamic ROI
    count (torchvision's), keeps its head."""
    if model.mask_head is None or isinstance(model.mask_sampler, ForegroundMaskSampler):
        return model
    layers = {"mask_sampler": recast(model.mask_sampler, ForegroundMaskSampler)}
    if type(model.mask_head) is instance_heads.MaskHead:  # noqa: E721  subclasses keep their call
        layers["mask_head"] = recast(model.mask_head, ForegroundMaskHead)
    return with_layers(model, **layers)
