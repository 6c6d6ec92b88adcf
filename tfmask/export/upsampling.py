"""Transposed convolutions whose kernel equals their stride, computed as a 1x1 conv + depth_to_space.

A ``Conv2DTranspose`` with a k x k kernel, stride k and ``valid`` padding (the
mask head's 2x2 upsampling to 28x28) writes each input pixel's k x k output
block from that pixel alone: ``out[k*i + a, k*j + b, o] = sum_c x[i, j, c] *
K[a, b, o, c]``. That is a 1x1 convolution to ``k*k*O`` channels followed by
``tf.nn.depth_to_space(., k)``, the same products and sums (exactly equal in
float32 and bfloat16 on this CPU). oneDNN runs the transposed convolution as a
backward-data kernel: over 100 ROIs of 14x14x256 in bfloat16 on a 2-core
AVX-512 CPU it took 129 ms, the 1x1 conv + depth_to_space 74 ms.

:func:`rewrite_transposed_convs` swaps the ``call`` of each such layer of a
model (after :func:`tfmask.export.fold_norms.fold_batch_norms`, which folds a
norm into the transposed convolution's kernel first); the variables are
unchanged::

    from tfmask.export.upsampling import rewrite_transposed_convs
    names = rewrite_transposed_convs(model)    # the layers now computed as 1x1 + depth_to_space
"""

from __future__ import annotations

import types
from typing import List

import tensorflow as tf


def _eligible(layer) -> bool:
    """A square k x k kernel with stride k, valid padding, NHWC, no dilation or output padding."""
    k = tuple(layer.kernel_size)
    return (k[0] == k[1] and tuple(layer.strides) == k and layer.padding == "valid"
            and layer.data_format == "channels_last"
            and tuple(layer.dilation_rate) == (1, 1) and layer.output_padding is None
            and getattr(layer, "kernel", None) is not None)


def _depth_to_space_call(layer):
    """``layer.call`` computed as a 1x1 conv to k*k*filters channels + depth_to_space(k)."""
    def call(self, inputs):
        k = self.kernel_size[0]
        kernel = tf.cast(self.kernel, inputs.dtype)  # [k, k, filters, C]
        channels = kernel.shape[-1]
        # [1, 1, C, k*k*filters]: channel (a*k + b)*filters + o holds K[a, b, o, :].
        pointwise = tf.reshape(tf.transpose(kernel, [3, 0, 1, 2]),
                               [1, 1, channels, k * k * self.filters])
        out = tf.nn.conv2d(inputs, pointwise, strides=1, padding="VALID")
        if self.use_bias:
            out = tf.nn.bias_add(out, tf.tile(tf.cast(self.bias, out.dtype), [k * k]))
        out = tf.nn.depth_to_space(out, k)
        return self.activation(out) if self.activation is not None else out
    return types.MethodType(call, layer)


def rewrite_transposed_convs(model) -> List[str]:
    """Swaps the ``call`` of every eligible ``Conv2DTranspose`` of ``model`` (see the
    module docstring); returns their layer names. Others are left as they are."""
    import tf_keras

    names = []
    for layer in model.submodules:
        if isinstance(layer, tf_keras.layers.Conv2DTranspose) and _eligible(layer):
            layer.call = _depth_to_space_call(layer)
            names.append(layer.name)
    return names
