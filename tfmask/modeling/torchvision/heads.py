"""torchvision's Mask R-CNN heads in Model Garden's head interfaces.

* :class:`RPNHead` — ``rpn.head``: ``depth`` 3x3 convs + ReLU (v1: 1, v2: 2),
  then 1x1 objectness (A per location) and 1x1 box deltas (4A), shared by the
  FPN levels. Model Garden's ``rpn_head`` interface: features ``{level:
  [B, H, W, C]}`` -> ``(scores {level: [B, H, W, A]}, boxes {level: [B, H, W, 4A]})``.
* :class:`BoxHead` — ``roi_heads.box_head`` + ``box_predictor``: v1's
  ``TwoMLPHead`` (fc6, fc7 of 1024) or v2's ``FastRCNNConvFCHead`` (4 conv+BN,
  one fc), then class logits and class-specific deltas. Model Garden's
  ``detection_head`` interface: ``[B, N, 7, 7, C]`` -> ``([B, N, K], [B, N, 4K])``.
* :class:`MaskHead` — ``roi_heads.mask_head`` + ``mask_predictor``: 4 conv
  (+BN in v2), a 2x2 stride-2 deconv + ReLU, 1x1 logits per class; returns the
  logits of each ROI's class, Model Garden's ``mask_head`` interface:
  ``[[B, N, 14, 14, C], [B, N]]`` -> ``[B, N, 28, 28]``.

Layouts: PyTorch deltas are ``(dx, dy, dw, dh)`` per anchor or class; Model
Garden's losses and tfmask's decoders take ``(dy, dx, dh, dw)``, so the
converter permutes those output rows (:func:`yx_rows`). PyTorch flattens ROI
features channel-first; ``fc6``'s input axis is permuted to NHWC (:func:`nchw_to_nhwc`).
Anchors stay in torchvision's order (aspect ratios 0.5, 1, 2 as height/width).
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from tfmask.modeling.torchvision.layers import (Conv, ConvNorm, ConvTranspose2x2, Linear,
                                                TorchParams, collect, kaiming_normal_fan_out)

NUM_ANCHORS = 3  # aspect ratios 0.5, 1, 2 and one size per level


def yx_rows(groups: int) -> np.ndarray:
    """Row order turning ``groups`` x ``(dx, dy, dw, dh)`` into ``(dy, dx, dh, dw)``."""
    return (np.arange(groups)[:, None] * 4 + np.array([1, 0, 3, 2])[None, :]).ravel()


def nchw_to_nhwc(channels: int, size: int) -> np.ndarray:
    """Index into an NCHW-flattened vector for each position of the NHWC flattening."""
    return np.arange(channels * size * size).reshape(channels, size, size).transpose(
        1, 2, 0).ravel()


class RPNHead(tf_keras.layers.Layer):
    """``RPNHead(width, NUM_ANCHORS, conv_depth=depth)`` on every FPN level."""

    def __init__(self, depth: int = 1, width: int = 256, num_anchors: int = NUM_ANCHORS,
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        def init():  # normal_(std=0.01), one initializer per layer
            return tf_keras.initializers.RandomNormal(stddev=0.01)

        self.convs = [ConvNorm(width, 3, kernel_initializer=init(),
                               kernel_regularizer=kernel_regularizer, name=f"conv_{i}")
                      for i in range(depth)]
        self.cls_logits = Conv(num_anchors, 1, kernel_initializer=init(), name="cls_logits")
        self.bbox_pred = Conv(4 * num_anchors, 1, kernel_initializer=init(),
                              output_permutation=yx_rows(num_anchors), name="bbox_pred")

    def call(self, features: Dict[str, tf.Tensor], training=None):
        scores, boxes = {}, {}
        for level, x in features.items():
            for conv in self.convs:
                x = conv(x)
            scores[level] = self.cls_logits(x)
            boxes[level] = self.bbox_pred(x)
        return scores, boxes

    def torch_params(self, prefix: str = "rpn.head") -> TorchParams:
        return collect([(f"{prefix}.conv.{i}", c) for i, c in enumerate(self.convs)]
                       + [(f"{prefix}.cls_logits", self.cls_logits),
                          (f"{prefix}.bbox_pred", self.bbox_pred)])


class BoxHead(tf_keras.layers.Layer):
    """Box head and predictor. ``convs`` 0 with ``fcs`` 2 is v1, ``convs`` 4 + BN is v2.

    Args:
      num_classes: classes including the background (91 for COCO).
      convs, conv_width, norm: v2's 3x3 convolutions (``norm``: BatchNorm).
      fcs, fc_width: fully connected layers after flattening the ROI crop.
      crop_size: the ROI crop side (7).
    """

    def __init__(self, num_classes: int, convs: int = 0, conv_width: int = 256,
                 fcs: int = 2, fc_width: int = 1024, norm: bool = False, epsilon: float = 1e-5,
                 in_channels: int = 256, crop_size: int = 7, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        reg = kernel_regularizer
        self.convs = [ConvNorm(conv_width, 3, norm=norm, epsilon=epsilon,
                               kernel_regularizer=reg, name=f"conv_{i}") for i in range(convs)]
        flat_channels = conv_width if convs else in_channels
        self.fcs = [Linear(fc_width, kernel_regularizer=reg, name=f"fc_{i}",
                           input_permutation=nchw_to_nhwc(flat_channels, crop_size)
                           if i == 0 else None)
                    for i in range(fcs)]
        self.cls_score = Linear(num_classes, name="cls_score")
        self.bbox_pred = Linear(4 * num_classes, output_permutation=yx_rows(num_classes),
                                name="bbox_pred")

    def call(self, roi_features, training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        shape = tf.shape(roi_features)
        s, c = roi_features.shape[2], roi_features.shape[4]
        x = tf.reshape(roi_features, [-1, s, s, c])
        for conv in self.convs:
            x = conv(x)
        x = tf.reshape(x, [shape[0], shape[1], s * s * x.shape[-1]])
        for fc in self.fcs:
            x = tf.nn.relu(fc(x))
        return self.cls_score(x), self.bbox_pred(x)

    def torch_params(self, prefix: str = "roi_heads") -> TorchParams:
        head = f"{prefix}.box_head"
        if self.convs:  # FastRCNNConvFCHead: convs, Flatten, (Linear, ReLU) pairs
            pairs = [(f"{head}.{i}", c) for i, c in enumerate(self.convs)]
            pairs += [(f"{head}.{len(self.convs) + 1 + 2 * i}", fc)
                      for i, fc in enumerate(self.fcs)]
        else:  # TwoMLPHead
            pairs = [(f"{head}.fc{6 + i}", fc) for i, fc in enumerate(self.fcs)]
        return collect(pairs + [(f"{prefix}.box_predictor.cls_score", self.cls_score),
                                (f"{prefix}.box_predictor.bbox_pred", self.bbox_pred)])


class MaskHead(tf_keras.layers.Layer):
    """``MaskRCNNHeads`` + ``MaskRCNNPredictor``; returns each ROI's class logits."""

    def __init__(self, num_classes: int, convs: int = 4, width: int = 256, norm: bool = False,
                 epsilon: float = 1e-5, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        reg = kernel_regularizer
        self.convs = [ConvNorm(width, 3, norm=norm, epsilon=epsilon, kernel_regularizer=reg,
                               name=f"conv_{i}") for i in range(convs)]
        self.conv5_mask = ConvTranspose2x2(width, kernel_regularizer=reg, name="conv5_mask")
        self.mask_fcn_logits = Conv(num_classes, 1, kernel_initializer=kaiming_normal_fan_out(),
                                    name="mask_fcn_logits")

    def call(self, inputs, training=None) -> tf.Tensor:
        roi_features, roi_classes = inputs
        shape = tf.shape(roi_features)
        s, c = roi_features.shape[2], roi_features.shape[4]
        x = tf.reshape(roi_features, [-1, s, s, c])
        for conv in self.convs:
            x = conv(x)
        x = self.mask_fcn_logits(tf.nn.relu(self.conv5_mask(x)))  # [B*N, 2s, 2s, K]
        x = tf.transpose(x, [0, 3, 1, 2])  # [B*N, K, 2s, 2s]
        classes = tf.reshape(tf.cast(roi_classes, tf.int32), [-1])
        picked = tf.gather(x, classes, batch_dims=1)  # [B*N, 2s, 2s]
        return tf.reshape(picked, [shape[0], shape[1], 2 * s, 2 * s])

    def torch_params(self, prefix: str = "roi_heads") -> TorchParams:
        return collect([(f"{prefix}.mask_head.{i}", c) for i, c in enumerate(self.convs)]
                       + [(f"{prefix}.mask_predictor.conv5_mask", self.conv5_mask),
                          (f"{prefix}.mask_predictor.mask_fcn_logits", self.mask_fcn_logits)])
