"""torchvision's ResNet-50 body and FPN, as Keras models (``backbone.body``, ``backbone.fpn``).

* :class:`ResNetBody` — ``torchvision.models.resnet50`` up to ``layer4``
  (bottlenecks with the stride on the 3x3 convolution, "ResNet v1.5"); returns
  ``{"2": C2, "3": C3, "4": C4, "5": C5}`` at strides 4-32, as
  ``IntermediateLayerGetter`` returns ``layer1``-``layer4``. All padding is
  PyTorch's (explicit, symmetric), BatchNorm is frozen.
* :class:`FPN` — ``FeaturePyramidNetwork`` + ``LastLevelMaxPool``: 1x1 lateral
  convs, top-down nearest upsampling (to the lateral's size), 3x3 output convs,
  and P6 = P5[::2, ::2] (a kernel-1 stride-2 max pool). Returns levels "2"-"6".
  ``norm=True`` is v2's FPN (convs without bias, each followed by BatchNorm).

These are Model Garden's ``backbone`` and ``decoder`` of the assembled model
(:mod:`.detector`), so Model Garden's checkpoints, ``freeze_variables`` groups
and warm start see them under those names.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import tensorflow as tf
import tf_keras

from tfmask.modeling.torchvision.layers import (Conv, ConvNorm, FrozenBatchNorm, MaxPool,
                                                TorchParams, collect)

RESNET50_BLOCKS = (3, 4, 6, 3)
_WIDTHS = (64, 128, 256, 512)


class Bottleneck(tf_keras.layers.Layer):
    """torchvision's ``Bottleneck``: 1x1, 3x3 (stride), 1x1 (x4), with a projection shortcut."""

    def __init__(self, width: int, stride: int, downsample: bool, epsilon: float,
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        reg = kernel_regularizer
        self.conv1 = Conv(width, 1, use_bias=False, kernel_regularizer=reg, name="conv1")
        self.bn1 = FrozenBatchNorm(epsilon, name="bn1")
        self.conv2 = Conv(width, 3, stride, 1, use_bias=False, kernel_regularizer=reg,
                          name="conv2")
        self.bn2 = FrozenBatchNorm(epsilon, name="bn2")
        self.conv3 = Conv(4 * width, 1, use_bias=False, kernel_regularizer=reg, name="conv3")
        self.bn3 = FrozenBatchNorm(epsilon, name="bn3")
        self.downsample = ([Conv(4 * width, 1, stride, use_bias=False, kernel_regularizer=reg,
                                 name="downsample_conv"),
                            FrozenBatchNorm(epsilon, name="downsample_bn")]
                           if downsample else [])

    def call(self, x):
        y = tf.nn.relu(self.bn1(self.conv1(x)))
        y = tf.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = self.downsample[1](self.downsample[0](x)) if self.downsample else x
        return tf.nn.relu(y + shortcut)

    def torch_params(self, prefix: str) -> TorchParams:
        pairs = [(f"{prefix}.{n}", getattr(self, n))
                 for n in ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")]
        pairs += [(f"{prefix}.downsample.{i}", layer) for i, layer in enumerate(self.downsample)]
        return collect(pairs)


class ResNetBody(tf_keras.Model):
    """ResNet-50 to ``layer4``: NHWC float32 normalized images -> C2..C5.

    Args:
      epsilon: BatchNorm epsilon (torchvision's COCO v1 weights use 0.0,
        ``overwrite_eps``; v2 and ImageNet weights 1e-5).
      trainable_layers: how many of layer4, layer3, layer2, layer1, the stem
        train, as torchvision's ``trainable_backbone_layers`` (3 for its
        fine-tuning: the stem and layer1 stay fixed).
      blocks: bottlenecks per stage.
    """

    def __init__(self, epsilon: float = 1e-5, trainable_layers: int = 3,
                 blocks: Sequence[int] = RESNET50_BLOCKS, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= trainable_layers <= 5:
            raise ValueError(f"trainable_layers must be 0-5, got {trainable_layers}")
        reg = kernel_regularizer
        self.conv1 = Conv(64, 7, 2, 3, use_bias=False, kernel_regularizer=reg, name="conv1")
        self.bn1 = FrozenBatchNorm(epsilon, name="bn1")
        self.maxpool = MaxPool(name="maxpool")
        self.stages: List[List[Bottleneck]] = []
        for i, (n, width) in enumerate(zip(blocks, _WIDTHS)):
            stride = 1 if i == 0 else 2
            self.stages.append([Bottleneck(width, stride if b == 0 else 1, b == 0, epsilon, reg,
                                           name=f"layer{i + 1}_{b}") for b in range(n)])
        # torchvision freezes from the stem up: [stem, layer1, ..., layer4][:5 - trainable].
        frozen = 5 - trainable_layers
        if frozen >= 1:
            self.conv1.trainable = False
        for stage in self.stages[:max(0, frozen - 1)]:
            for block in stage:
                block.trainable = False

    def call(self, images, training=None) -> Dict[str, tf.Tensor]:
        x = self.maxpool(tf.nn.relu(self.bn1(self.conv1(images))))
        out = {}
        for level, stage in enumerate(self.stages, start=2):
            for block in stage:
                x = block(x)
            out[str(level)] = x
        return out

    def torch_params(self, prefix: str = "backbone.body") -> TorchParams:
        pairs = [(f"{prefix}.conv1", self.conv1), (f"{prefix}.bn1", self.bn1)]
        for i, stage in enumerate(self.stages):
            pairs += [(f"{prefix}.layer{i + 1}.{b}", block) for b, block in enumerate(stage)]
        return collect(pairs)


def upsample_nearest(x: tf.Tensor, size_hw: tf.Tensor) -> tf.Tensor:
    """``F.interpolate(x, size, mode="nearest")``: output i takes input floor(i * in / out)."""
    def axis(t, axis_index, out_n):
        in_n = tf.shape(t)[axis_index]
        scale = tf.cast(in_n, tf.float32) / tf.cast(out_n, tf.float32)
        idx = tf.cast(tf.floor(tf.cast(tf.range(out_n), tf.float32) * scale), tf.int32)
        return tf.gather(t, tf.minimum(idx, in_n - 1), axis=axis_index)

    return axis(axis(x, 1, size_hw[0]), 2, size_hw[1])


class FPN(tf_keras.Model):
    """``FeaturePyramidNetwork([256, 512, 1024, 2048], width, LastLevelMaxPool())``.

    Input: ``{"2".."5"}`` backbone maps; output: ``{"2".."6"}``, ``width`` channels.
    """

    def __init__(self, width: int = 256, norm: bool = False, epsilon: float = 1e-5,
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        def block(size, name):  # kaiming_uniform_(a=1), one initializer per layer
            return ConvNorm(width, size, norm=norm, relu=False, epsilon=epsilon,
                            kernel_regularizer=kernel_regularizer, name=name,
                            kernel_initializer=tf_keras.initializers.VarianceScaling(
                                1.0, "fan_in", "uniform"))

        self.inner_blocks = [block(1, f"inner_{i}") for i in range(4)]
        self.layer_blocks = [block(3, f"layer_{i}") for i in range(4)]

    def call(self, features: Dict[str, tf.Tensor], training=None) -> Dict[str, tf.Tensor]:
        xs = [features[str(level)] for level in range(2, 6)]
        last = self.inner_blocks[3](xs[3])
        results = [self.layer_blocks[3](last)]
        for i in range(2, -1, -1):
            lateral = self.inner_blocks[i](xs[i])
            last = lateral + upsample_nearest(last, tf.shape(lateral)[1:3])
            results.insert(0, self.layer_blocks[i](last))
        results.append(results[-1][:, ::2, ::2, :])  # LastLevelMaxPool: P6
        return {str(level): r for level, r in zip(range(2, 7), results)}

    def torch_params(self, prefix: str = "backbone.fpn") -> TorchParams:
        return collect([(f"{prefix}.inner_blocks.{i}", b) for i, b in enumerate(self.inner_blocks)]
                       + [(f"{prefix}.layer_blocks.{i}", b)
                          for i, b in enumerate(self.layer_blocks)])
