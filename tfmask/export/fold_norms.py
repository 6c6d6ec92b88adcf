"""Folding inference batch norms into the convolutions before them, for an export.

In inference a batch norm is a per-channel affine map, ``y = s * (x - mean) + beta``
with ``s = gamma / sqrt(variance + epsilon)``, so after a convolution it can be
folded into it: the kernel's output channels are scaled by ``s`` and the norm
becomes a bias, ``beta - s * mean`` (plus ``s *`` the convolution's own bias).
Grappler does this for float32 graphs on CPU where it can; it does not for a
bfloat16 graph (``FusedBatchNormV3`` with ``T=bfloat16``), which then runs every
norm of the backbone, FPN and heads as its own pass over the activations. On a
2-core AVX-512 CPU, four 3x3 convolutions of 256 channels with a norm and ReLU
each took 62 ms in bfloat16 against 34 ms for the same with a bias.

:func:`fold_batch_norms` finds the pairs in the model's traced serving graph
(a ``FusedBatchNormV3`` in inference mode whose input is a ``Conv2D`` or a
transposed convolution, optionally through the convolution's ``BiasAdd``, with
no other reader), rescales the convolution's kernel in place and replaces the
norm layer's ``call`` with the bias. A convolution called more than once (the
RPN head's, shared across levels, each level with its own norm) or a norm
called more than once is left as it is. The model is changed in place: export
writes its checkpoint first::

    from tfmask.export.fold_norms import fold_batch_norms
    report = fold_batch_norms(model, prep)     # report.folded: [(conv name, norm name)]
"""

from __future__ import annotations

import types
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import tensorflow as tf

_CONVS = {"Conv2D": -1, "Conv2DBackpropInput": -2}  # op type -> kernel's output-channel axis
_PASS_THROUGH = ("Identity", "Cast")


@dataclass
class FoldReport:
    """What :func:`fold_batch_norms` did.

    Attributes:
      folded: (convolution layer name, norm layer name) of each folded pair.
      left: norm layer name -> why it was left as it is.
    """

    folded: List[Tuple[str, str]] = field(default_factory=list)
    left: Dict[str, str] = field(default_factory=dict)


def _source(tensor: tf.Tensor) -> tf.Tensor:
    while tensor.op.type in _PASS_THROUGH:
        tensor = tensor.op.inputs[0]
    return tensor


def _variable_of(tensor: tf.Tensor, captured: Dict[int, object]):
    """The variable a graph tensor reads (through casts), or None."""
    tensor = _source(tensor)
    if tensor.op.type != "ReadVariableOp":
        return None
    return captured.get(id(tensor.op.inputs[0]))


def _layers_by_variable(model) -> Tuple[Dict[int, object], Dict[int, object]]:
    """id(kernel) -> convolution layer, id(moving_mean) -> batch-norm layer."""
    import tf_keras
    from tf_keras.src.layers.normalization.batch_normalization import BatchNormalizationBase

    convs, norms = {}, {}
    for layer in model.submodules:  # Keras' own norms only (Model Garden's sync norm too)
        if isinstance(layer, tf_keras.layers.Conv2D) and getattr(layer, "kernel", None) is not None:
            convs[id(layer.kernel)] = layer
        elif isinstance(layer, BatchNormalizationBase) and layer.built:
            norms[id(layer.moving_mean)] = layer
    return convs, norms


def _foldable_norm(norm) -> str:
    """'' or why this norm layer cannot become a bias."""
    axis = list(norm.axis) if isinstance(norm.axis, (list, tuple)) else [norm.axis]
    if axis not in ([3], [-1]):
        return f"normalizes axis {axis}, not the channels of an NHWC tensor"
    if getattr(norm, "renorm", False) or getattr(norm, "virtual_batch_size", None) \
            or getattr(norm, "adjustment", None) is not None:
        return "uses renorm, virtual batches or an adjustment"
    return ""


def _pairs(model, graph):
    """(conv op, conv layer, norm layer) for each norm fed by a convolution alone."""
    variables = {id(v.handle): v for v in model.variables}
    # The graph's placeholder of each captured handle -> the model's variable.
    handle_to_var = {id(internal): variables.get(id(external))
                     for external, internal in graph.captures}
    convs, norms = _layers_by_variable(model)
    reads = Counter()  # id(variable) -> ops that compute with it
    found, left = [], {}
    ops = graph.get_operations()
    for op in ops:
        if op.type in _CONVS:
            var = _variable_of(op.inputs[1], handle_to_var)
            if var is not None:
                reads[id(var)] += 1
        elif op.type.startswith("FusedBatchNorm"):
            var = _variable_of(op.inputs[3], handle_to_var)
            if var is not None:
                reads[id(var)] += 1
    for op in ops:
        if not op.type.startswith("FusedBatchNorm"):
            continue
        mean = _variable_of(op.inputs[3], handle_to_var)
        norm = norms.get(id(mean)) if mean is not None else None
        if norm is None:
            continue
        name = norm.name
        x = op.inputs[0]
        if op.get_attr("is_training"):
            left[name] = "runs in training mode"
            continue
        if x.op.type == "BiasAdd":
            if len(x.consumers()) != 1:
                left[name] = "its convolution's output has other readers"
                continue
            x = x.op.inputs[0]
        conv_op = x.op
        kernel = _variable_of(conv_op.inputs[1], handle_to_var) if conv_op.type in _CONVS else None
        conv = convs.get(id(kernel)) if kernel is not None else None
        why = _foldable_norm(norm)
        if conv is None:
            why = why or f"its input comes from {conv_op.type}, not a convolution"
        elif len(x.consumers()) != 1:
            why = why or "its convolution's output has other readers"
        elif reads[id(kernel)] != 1 or reads[id(mean)] != 1:
            why = why or "its convolution or the norm is called more than once"
        if why:
            left[name] = why
            continue
        found.append((conv_op, conv, norm))
    return found, left


def _bias_call(norm):
    """The norm layer's ``call`` once folded: add its folded bias (or nothing)."""
    def call(self, inputs, training=None):
        bias = getattr(self, "tfmask_folded_bias", None)
        if bias is None:
            return inputs
        return tf.nn.bias_add(inputs, tf.cast(bias, inputs.dtype))
    return types.MethodType(call, norm)


def fold_batch_norms(model, prep) -> FoldReport:
    """Folds every foldable inference batch norm of ``model`` (a Model Garden Mask R-CNN)
    into its convolution; ``prep``: the export's
    :class:`~tfmask.export.serving.Preprocessing` (the serving computation is traced
    at its padded size to find the pairs). See :func:`fold_in_graph`."""
    from tfmask.export.serving import detect

    trace = tf.function(lambda x: detect(model, prep, x))
    return fold_in_graph(model, trace.get_concrete_function(
        tf.TensorSpec([1, *prep.padded_hw, 3], tf.uint8)).graph)


def fold_in_graph(model, graph) -> FoldReport:
    """Folds the batch norms of ``model`` that ``graph`` (a traced call of it, e.g.
    ``tf.function(model).get_concrete_function(spec).graph``) shows after a
    convolution alone.

    Kernels are rescaled in float32 (the variables' dtype under either compute
    policy); a folded norm's layer then adds a float32 bias variable
    ``tfmask_folded_bias`` [C] (or, after a convolution with a bias, nothing: that
    bias takes it). Returns what was folded and what was left, by layer name.
    """
    found, left = _pairs(model, graph)
    report = FoldReport(left=left)
    for conv_op, conv, norm in found:
        axis = _CONVS[conv_op.type]
        mean = tf.convert_to_tensor(norm.moving_mean, tf.float32)
        var = tf.convert_to_tensor(norm.moving_variance, tf.float32)
        gamma = (tf.convert_to_tensor(norm.gamma, tf.float32) if norm.gamma is not None
                 else tf.ones_like(mean))
        beta = (tf.convert_to_tensor(norm.beta, tf.float32) if norm.beta is not None
                else tf.zeros_like(mean))
        scale = gamma * tf.math.rsqrt(var + norm.epsilon)
        shape = [1] * len(conv.kernel.shape)
        shape[axis] = -1
        conv.kernel.assign(tf.cast(conv.kernel, tf.float32) * tf.reshape(scale, shape))
        bias = beta - scale * mean
        if conv.use_bias:
            conv.bias.assign(tf.cast(conv.bias, tf.float32) * scale + bias)
        else:
            norm.tfmask_folded_bias = tf.Variable(bias, trainable=False,
                                                  name=f"{norm.name}_folded_bias")
        norm.call = _bias_call(norm)
        report.folded.append((conv.name, norm.name))
    return report
