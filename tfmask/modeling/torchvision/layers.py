"""Keras layers that compute what PyTorch's do, with torchvision's parameter names.

The layers of tfmask's torchvision Mask R-CNN (:mod:`.backbone`, :mod:`.heads`):

* :class:`Conv` — ``nn.Conv2d`` with PyTorch's explicit, symmetric zero padding
  (TF's ``SAME`` pads a stride-2 convolution of an even input on the bottom and
  right only, which shifts every stride-2 output by half a pixel);
* :class:`FrozenBatchNorm` — ``FrozenBatchNorm2d`` / an eval-mode ``BatchNorm2d``:
  ``x * w / sqrt(var + eps) + (b - mean * w / sqrt(var + eps))``, statistics and
  affine parameters fixed (not trained);
* :class:`ConvNorm` — ``Conv2dNormActivation``: conv, optional norm, optional ReLU;
* :class:`MaxPool` — ``nn.MaxPool2d(3, 2, padding=1)`` (padding is -inf);
* :class:`Linear` and :class:`ConvTranspose2x2` — ``nn.Linear`` and the mask
  head's ``nn.ConvTranspose2d(k=2, s=2)``.

Each layer maps its variables to state-dict keys with :meth:`torch_params`
(``{key: (variable, to_tf)}``, ``to_tf`` turning the PyTorch array layout into
the variable's), which the converter (:mod:`.convert`) uses. Tensors are NHWC
float32; PyTorch's NCHW kernels ``[out, in, kh, kw]`` become ``[kh, kw, in, out]``.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

TorchParams = Dict[str, Tuple[tf.Variable, Callable[[np.ndarray], np.ndarray]]]


def conv_kernel(w: np.ndarray) -> np.ndarray:
    """``[out, in, kh, kw]`` -> ``[kh, kw, in, out]``."""
    return np.transpose(w, (2, 3, 1, 0))


def _same(w: np.ndarray) -> np.ndarray:
    return w


def kaiming_normal_fan_out() -> tf_keras.initializers.Initializer:
    """``nn.init.kaiming_normal_(mode="fan_out", nonlinearity="relu")``."""
    return tf_keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def torch_linear_init() -> tf_keras.initializers.Initializer:
    """``nn.Linear``'s default weight init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return tf_keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


class Conv(tf_keras.layers.Layer):
    """``nn.Conv2d(in, filters, kernel_size, stride, padding, bias=use_bias)``, NHWC.

    ``output_permutation`` reorders the output channels from PyTorch's (the RPN's
    box deltas, :class:`Linear`).
    """

    def __init__(self, filters: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 use_bias: bool = True, kernel_initializer=None,
                 bias_initializer="zeros", kernel_regularizer=None,
                 output_permutation: Optional[np.ndarray] = None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.stride = filters, kernel_size, stride
        self.padding, self.use_bias = padding, use_bias
        self._out_perm = output_permutation
        self._kernel_init = kernel_initializer or kaiming_normal_fan_out()
        self._bias_init = bias_initializer
        self._kernel_reg = kernel_regularizer

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight("kernel", [k, k, int(input_shape[-1]), self.filters],
                                      initializer=self._kernel_init,
                                      regularizer=self._kernel_reg)
        self.bias = (self.add_weight("bias", [self.filters], initializer=self._bias_init)
                     if self.use_bias else None)
        super().build(input_shape)

    def call(self, x):
        p = self.padding
        if p:
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        y = tf.nn.conv2d(x, self.kernel, self.stride, "VALID")
        return y + self.bias if self.bias is not None else y

    def torch_params(self, prefix: str) -> TorchParams:
        perm = self._out_perm if self._out_perm is not None else slice(None)
        out = {f"{prefix}.weight": (self.kernel, lambda w: conv_kernel(w[perm]))}
        if self.bias is not None:
            out[f"{prefix}.bias"] = (self.bias, lambda b: b[perm])
        return out


class FrozenBatchNorm(tf_keras.layers.Layer):
    """``FrozenBatchNorm2d(num_features, eps)``: fixed statistics and affine parameters.

    Also what an eval-mode ``nn.BatchNorm2d`` computes; tfmask never updates the
    statistics (fine-tuning batches are a few images).
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        n = [int(input_shape[-1])]
        add = lambda name, init: self.add_weight(name, n, initializer=init,  # noqa: E731
                                                 trainable=False)
        self.weight, self.bias = add("weight", "ones"), add("bias", "zeros")
        self.running_mean, self.running_var = add("running_mean", "zeros"), add(
            "running_var", "ones")
        super().build(input_shape)

    def call(self, x):
        scale = self.weight * tf.math.rsqrt(self.running_var + self.epsilon)
        return x * scale + (self.bias - self.running_mean * scale)

    def torch_params(self, prefix: str) -> TorchParams:
        return {f"{prefix}.{name}": (getattr(self, name), _same)
                for name in ("weight", "bias", "running_mean", "running_var")}


class ConvNorm(tf_keras.layers.Layer):
    """``Conv2dNormActivation``: ``[0]`` conv (bias only without norm), ``[1]`` norm, ReLU.

    Its state-dict keys are ``PREFIX.0.weight`` (+ ``PREFIX.0.bias``) and
    ``PREFIX.1.*`` for the norm.
    """

    def __init__(self, filters: int, kernel_size: int, stride: int = 1,
                 norm: bool = False, relu: bool = True, epsilon: float = 1e-5,
                 kernel_regularizer=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.conv = Conv(filters, kernel_size, stride, (kernel_size - 1) // 2,
                         use_bias=not norm, kernel_regularizer=kernel_regularizer,
                         kernel_initializer=kernel_initializer, name="conv")
        self.norm = FrozenBatchNorm(epsilon, name="norm") if norm else None
        self.relu = relu

    def call(self, x):
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return tf.nn.relu(x) if self.relu else x

    def torch_params(self, prefix: str) -> TorchParams:
        out = self.conv.torch_params(f"{prefix}.0")
        if self.norm is not None:
            out.update(self.norm.torch_params(f"{prefix}.1"))
        return out


class MaxPool(tf_keras.layers.Layer):
    """``nn.MaxPool2d(kernel_size=3, stride=2, padding=1)``: pads with -inf, not zeros."""

    def call(self, x):
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=-np.inf)
        return tf.nn.max_pool2d(x, 3, 2, "VALID")


class Linear(tf_keras.layers.Layer):
    """``nn.Linear(in, units)`` on the last axis; ``rows`` reorders its outputs.

    Args:
      units: output features.
      input_permutation: converts a PyTorch weight's input axis when the
        input's layout differs (the box head flattens NHWC, PyTorch NCHW).
      output_permutation: output-row order, e.g. box deltas ``(dx, dy, dw, dh)``
        -> ``(dy, dx, dh, dw)``; ``None`` keeps PyTorch's.
    """

    def __init__(self, units: int, input_permutation: Optional[np.ndarray] = None,
                 output_permutation: Optional[np.ndarray] = None, kernel_initializer=None,
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self._in_perm, self._out_perm = input_permutation, output_permutation
        self._kernel_init = kernel_initializer or torch_linear_init()
        self._kernel_reg = kernel_regularizer

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        bound = 1.0 / np.sqrt(fan_in)
        self.kernel = self.add_weight("kernel", [fan_in, self.units],
                                      initializer=self._kernel_init,
                                      regularizer=self._kernel_reg)
        self.bias = self.add_weight(
            "bias", [self.units], initializer=tf_keras.initializers.RandomUniform(-bound, bound))
        super().build(input_shape)

    def call(self, x):
        return tf.matmul(x, self.kernel) + self.bias

    def _kernel(self, w: np.ndarray) -> np.ndarray:
        if self._out_perm is not None:
            w = w[self._out_perm]
        if self._in_perm is not None:
            w = w[:, self._in_perm]
        return np.ascontiguousarray(w.T)

    def _bias(self, b: np.ndarray) -> np.ndarray:
        return b[self._out_perm] if self._out_perm is not None else b

    def torch_params(self, prefix: str) -> TorchParams:
        return {f"{prefix}.weight": (self.kernel, self._kernel),
                f"{prefix}.bias": (self.bias, self._bias)}


class ConvTranspose2x2(tf_keras.layers.Layer):
    """``nn.ConvTranspose2d(in, filters, kernel_size=2, stride=2)``: doubles H and W.

    Output pixel ``(2i + a, 2j + b)`` is ``sum_c x[i, j, c] * W[c, o, a, b] + bias``,
    the same in both libraries once ``[in, out, kh, kw]`` becomes ``[kh, kw, out, in]``.
    """

    def __init__(self, filters: int, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self._kernel_reg = kernel_regularizer

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", [2, 2, self.filters, int(input_shape[-1])],
                                      initializer=kaiming_normal_fan_out(),
                                      regularizer=self._kernel_reg)
        self.bias = self.add_weight("bias", [self.filters], initializer="zeros")
        super().build(input_shape)

    def call(self, x):
        shape = tf.shape(x)
        out = tf.stack([shape[0], 2 * shape[1], 2 * shape[2], self.filters])
        return tf.nn.conv2d_transpose(x, self.kernel, out, 2, "VALID") + self.bias

    def torch_params(self, prefix: str) -> TorchParams:
        return {f"{prefix}.weight": (self.kernel, lambda w: np.transpose(w, (2, 3, 1, 0))),
                f"{prefix}.bias": (self.bias, _same)}


def collect(pairs) -> TorchParams:
    """Merges ``(prefix, layer)`` pairs' :meth:`torch_params` into one table."""
    out: TorchParams = {}
    for prefix, layer in pairs:
        out.update(layer.torch_params(prefix))
    return out
