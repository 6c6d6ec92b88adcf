"""Inception-ResNet-v2 backbone for Model Garden Mask R-CNN.

The network is Keras' ``InceptionResNetV2(include_top=False)`` layer for
layer (same filter counts, kernel sizes, batch norms without scale, residual
scales 0.17 / 0.1 / 0.2) with two changes that make it an FPN backbone:

* every convolution and pooling uses ``padding='same'``, so an input whose
  height and width are divisible by 32 gives level ``l`` maps of exactly
  ``H / 2**l`` by ``W / 2**l`` (Keras' ``'valid'`` stem gives 35x35 for 299);
* the first layer maps Model Garden's normalized input
  (``preprocess_ops.normalize_image``: ``(pixel_value / 255 - MEAN_NORM) /
  STDDEV_NORM``) back to the ``pixel_value / 127.5 - 1`` range the Keras
  ImageNet weights were trained on.

Layers carry Keras' names, so ImageNet weights written by Keras
(``inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5`` or any
``model.save_weights('x.h5')``) load with
:func:`tfmask.modeling.keras_h5.load_keras_h5_weights`.

Example::

    backbone = build_inception_resnet_v2(
        tf_keras.layers.InputSpec(shape=[None, 640, 640, 3]))
    report = keras_h5.load_keras_h5_weights(backbone, "pretrained/irv2_notop.h5")
    features = backbone(images)  # {'2': [B,160,160,192], ..., '5': [B,20,20,1536]}
"""

from __future__ import annotations

import collections
from typing import Dict, List

import tensorflow as tf
import tf_keras
from official.vision.ops.preprocess_ops import MEAN_NORM, STDDEV_NORM

# Output level -> channels; level l has stride 2**l.
LEVEL_CHANNELS: Dict[str, int] = {"2": 192, "3": 320, "4": 1088, "5": 1536}

# Branch specs of the residual blocks: per branch, (filters, kernel_size) convs.
_BLOCK_BRANCHES = {
    "block35": [[(32, 1)], [(32, 1), (32, 3)], [(32, 1), (48, 3), (64, 3)]],
    "block17": [[(192, 1)], [(128, 1), (160, (1, 7)), (192, (7, 1))]],
    "block8": [[(192, 1)], [(192, 1), (224, (1, 3)), (256, (3, 1))]],
}


@tf_keras.utils.register_keras_serializable(package="tfmask")
class NormalizedToSymmetricRange(tf_keras.layers.Layer):
    """Maps a Model Garden normalized RGB image to ``pixel_value / 127.5 - 1``.

    ``pixel_value / 255 = x * STDDEV_NORM + MEAN_NORM``, so the output is
    ``x * 2 * STDDEV_NORM + (2 * MEAN_NORM - 1)``. No weights.
    """

    def call(self, inputs):
        scale = tf.constant([2.0 * s for s in STDDEV_NORM], inputs.dtype)
        offset = tf.constant([2.0 * m - 1.0 for m in MEAN_NORM], inputs.dtype)
        return inputs * scale + offset


@tf_keras.utils.register_keras_serializable(package="tfmask")
class ResidualScale(tf_keras.layers.Layer):
    """``shortcut + scale * residual`` for inputs ``[shortcut, residual]``. No weights."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + residual * tf.cast(self.scale, residual.dtype)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


class _LayerMaker:
    """Creates layers with Keras' names, numbering the ones Keras auto-names.

    Keras numbers ``conv2d``, ``batch_normalization`` and ``activation``
    layers per class in construction order; this reproduces that numbering
    from 1 (``conv2d_1`` ...) independently of what else the process built.
    """

    def __init__(self, kernel_regularizer, norm_momentum, norm_epsilon, use_sync_bn):
        self._regularizer = kernel_regularizer
        self._momentum = norm_momentum
        self._epsilon = norm_epsilon
        self._norm = (tf_keras.layers.experimental.SyncBatchNormalization
                      if use_sync_bn else tf_keras.layers.BatchNormalization)
        self._counts = collections.Counter()

    def auto_name(self, prefix: str) -> str:
        self._counts[prefix] += 1
        return f"{prefix}_{self._counts[prefix]}"

    def conv(self, x, filters, kernel_size, *, strides=1, use_bias=False, name=None):
        return tf_keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
            kernel_regularizer=self._regularizer,
            name=name or self.auto_name("conv2d"))(x)

    def conv_bn(self, x, filters, kernel_size, *, strides=1, name=None):
        """Conv (no bias) -> BN (no scale) -> ReLU, Keras' ``conv2d_bn``."""
        x = self.conv(x, filters, kernel_size, strides=strides, name=name)
        x = self._norm(scale=False, momentum=self._momentum, epsilon=self._epsilon,
                       name=f"{name}_bn" if name else self.auto_name("batch_normalization"))(x)
        return tf_keras.layers.Activation(
            "relu", name=f"{name}_ac" if name else self.auto_name("activation"))(x)

    def max_pool(self, x, strides):
        return tf_keras.layers.MaxPooling2D(
            3, strides=strides, padding="same", name=self.auto_name("max_pooling2d"))(x)

    def branches(self, x, specs) -> List[tf.Tensor]:
        """Applies each branch, a list of (filters, kernel_size[, strides]) convs."""
        outputs = []
        for branch in specs:
            y = x
            for filters, kernel_size, *strides in branch:
                y = self.conv_bn(y, filters, kernel_size, strides=strides[0] if strides else 1)
            outputs.append(y)
        return outputs


def _residual_block(make: _LayerMaker, x, block_type: str, index: int, scale: float,
                    activation: bool = True):
    name = f"{block_type}_{index}"
    mixed = tf_keras.layers.Concatenate(name=f"{name}_mixed")(
        make.branches(x, _BLOCK_BRANCHES[block_type]))
    up = make.conv(mixed, x.shape[-1], 1, use_bias=True, name=f"{name}_conv")
    x = ResidualScale(scale, name=name)([x, up])
    if activation:
        x = tf_keras.layers.Activation("relu", name=f"{name}_ac")(x)
    return x


def _build_endpoints(images, make: _LayerMaker) -> Dict[str, tf.Tensor]:
    """The Keras InceptionResNetV2 graph with 'same' padding; returns levels 2..5."""
    endpoints = {}
    x = NormalizedToSymmetricRange(name="input_rescale")(images)
    x = make.conv_bn(x, 32, 3, strides=2)
    x = make.conv_bn(x, 32, 3)
    x = make.conv_bn(x, 64, 3)
    x = make.max_pool(x, strides=2)
    x = make.conv_bn(x, 80, 1)
    x = make.conv_bn(x, 192, 3)
    endpoints["2"] = x

    x = make.max_pool(x, strides=2)
    branches = make.branches(x, [[(96, 1)], [(48, 1), (64, 5)], [(64, 1), (96, 3), (96, 3)]])
    pool = tf_keras.layers.AveragePooling2D(
        3, strides=1, padding="same", name=make.auto_name("average_pooling2d"))(x)
    branches.append(make.conv_bn(pool, 64, 1))
    x = tf_keras.layers.Concatenate(name="mixed_5b")(branches)
    for index in range(1, 11):
        x = _residual_block(make, x, "block35", index, scale=0.17)
    endpoints["3"] = x

    branches = make.branches(x, [[(384, 3, 2)], [(256, 1), (256, 3), (384, 3, 2)]])
    x = tf_keras.layers.Concatenate(name="mixed_6a")(branches + [make.max_pool(x, strides=2)])
    for index in range(1, 21):
        x = _residual_block(make, x, "block17", index, scale=0.1)
    endpoints["4"] = x

    branches = make.branches(x, [[(256, 1), (384, 3, 2)], [(256, 1), (288, 3, 2)],
                                 [(256, 1), (288, 3), (320, 3, 2)]])
    x = tf_keras.layers.Concatenate(name="mixed_7a")(branches + [make.max_pool(x, strides=2)])
    for index in range(1, 10):
        x = _residual_block(make, x, "block8", index, scale=0.2)
    x = _residual_block(make, x, "block8", 10, scale=1.0, activation=False)
    endpoints["5"] = make.conv_bn(x, 1536, 1, name="conv_7b")
    return endpoints


@tf_keras.utils.register_keras_serializable(package="tfmask")
class InceptionResNetV2Backbone(tf_keras.Model):
    """Functional Inception-ResNet-v2 with a ``{level: feature map}`` output.

    Outputs (float, channels last, for a ``[B, H, W, 3]`` input with H and W
    divisible by 32): ``'2'`` ``[B, H/4, W/4, 192]`` (stem 3x3 conv),
    ``'3'`` ``[B, H/8, W/8, 320]`` (after block35_10), ``'4'``
    ``[B, H/16, W/16, 1088]`` (after block17_20), ``'5'``
    ``[B, H/32, W/32, 1536]`` (conv_7b_ac).
    """

    def __init__(self, input_specs: tf_keras.layers.InputSpec, kernel_regularizer=None,
                 norm_momentum: float = 0.99, norm_epsilon: float = 0.001,
                 use_sync_bn: bool = False, **kwargs):
        images = tf_keras.Input(shape=input_specs.shape[1:], name="image")
        make = _LayerMaker(kernel_regularizer, norm_momentum, norm_epsilon, use_sync_bn)
        endpoints = _build_endpoints(images, make)
        kwargs.setdefault("name", "inception_resnet_v2")
        super().__init__(inputs=images, outputs=endpoints, **kwargs)
        self._config_dict = {
            "input_specs": input_specs, "kernel_regularizer": kernel_regularizer,
            "norm_momentum": norm_momentum, "norm_epsilon": norm_epsilon,
            "use_sync_bn": use_sync_bn,
        }
        self._output_specs = {level: out.get_shape() for level, out in endpoints.items()}

    @property
    def output_specs(self) -> Dict[str, tf.TensorShape]:
        """``{level: TensorShape}`` of the outputs, read by Model Garden decoders."""
        return self._output_specs

    def get_config(self):
        config = dict(self._config_dict)
        config["input_specs"] = list(config["input_specs"].shape)
        config["kernel_regularizer"] = tf_keras.regularizers.serialize(
            config["kernel_regularizer"]) if config["kernel_regularizer"] else None
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["input_specs"] = tf_keras.layers.InputSpec(shape=config["input_specs"])
        if config.get("kernel_regularizer"):
            config["kernel_regularizer"] = tf_keras.regularizers.deserialize(
                config["kernel_regularizer"], custom_objects=custom_objects)
        return cls(**config)


def build_inception_resnet_v2(input_specs: tf_keras.layers.InputSpec, *,
                              kernel_regularizer=None, norm_momentum: float = 0.99,
                              norm_epsilon: float = 0.001,
                              use_sync_bn: bool = False) -> InceptionResNetV2Backbone:
    """Builds the Inception-ResNet-v2 FPN backbone (random weights).

    Args:
      input_specs: spec of the ``[B, H, W, 3]`` float input, normalized the
        Model Garden way (``(pixel_value / 255 - MEAN_NORM) / STDDEV_NORM``).
        H and W (static or ``None``) must be divisible by 32 at run time for
        the levels to have exactly ``H / 2**l`` rows.
      kernel_regularizer: regularizer applied to every conv kernel, or None.
      norm_momentum: batch-norm moving-average momentum.
      norm_epsilon: batch-norm epsilon.
      use_sync_bn: use ``SyncBatchNormalization`` (multi-replica training).

    Returns:
      A functional ``tf_keras.Model`` whose outputs are ``{'2','3','4','5'}``
      feature maps (see :class:`InceptionResNetV2Backbone`), with an
      ``output_specs`` property.
    """
    return InceptionResNetV2Backbone(
        input_specs, kernel_regularizer=kernel_regularizer, norm_momentum=norm_momentum,
        norm_epsilon=norm_epsilon, use_sync_bn=use_sync_bn)
