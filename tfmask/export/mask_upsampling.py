"""The mask head's 2x2 transposed convolution as a 1x1 convolution and ``depth_to_space``,
for an export.

Model Garden's mask head upsamples its 14x14 ROI features to 28x28 with a
``Conv2DTranspose`` whose kernel size equals its stride (f x f, ``valid``), then a
batch norm and the activation. Each output pixel ``(f*i + a, f*j + b)`` is then one
input pixel ``(i, j)`` times the kernel tap ``(a, b)``: the same products as a 1x1
convolution to ``f*f*C`` channels followed by ``depth_to_space(f)``. The rewrite
matters on CPU because of what runs there, not what is computed:

* oneDNN runs the transposed convolution as a backward-data kernel
  (``Conv2DBackpropInput``), and Grappler fuses neither its bias nor the ReLU after
  it, so both run as their own passes over the 28x28 output. In the bfloat16
  R50-FPN SavedModel of the peers bench (100 detections, an AMX Xeon, 2 cores)
  the three took ~12 + 12 + 17 ms of op time;
* a 1x1 ``Conv2D`` + ``BiasAdd`` + ReLU fuses into one oneDNN convolution (the
  activation commutes with ``depth_to_space``, so it runs before, on the 14x14
  side), ~5 ms, and the ``depth_to_space`` copy ~6 ms. Batch-1 latency of that
  SavedModel: 254 -> 229 ms median, with identical outputs. In float32, where
  Grappler's fusions differ, it measured no faster (813 -> 818 ms), so a float32
  head is left as it is by default.

:func:`rewrite_mask_upsampling` needs the deconvolution's norm already folded into
it (:mod:`tfmask.export.fold_norms`), so that the norm is a bias. It replaces the
head instance's ``call`` with one computing the same: convolutions and norms as
Model Garden's, the fused upsampling, the mask logits, the class selection. The
model is changed in place (export writes its checkpoint first); training keeps
Model Garden's layers.

Kernel layout (Keras' ``Conv2DTranspose``): ``[f, f, C_out, C_in]``; the 1x1
kernel is ``[1, 1, C_in, f*f*C_out]`` with output channel ``(a*f + b)*C_out + o``
holding tap ``(a, b)`` of channel ``o``, which is the order ``depth_to_space``
(NHWC) reads.
"""

from __future__ import annotations

import types

import tensorflow as tf


def _why_not(head, folded, in_float32: bool) -> str:
    """'' or why ``head`` is left as it is."""
    import tf_keras
    from official.vision.modeling.heads import instance_heads

    from tfmask.modeling.foreground_masks import ForegroundMaskHead

    if type(head) not in (instance_heads.MaskHead, ForegroundMaskHead):
        return f"the mask head is a {type(head).__name__}, not Model Garden's MaskHead"
    deconv, norm = getattr(head, "_deconv", None), getattr(head, "_deconv_bn", None)
    if deconv is None or norm is None or deconv.kernel is None:
        return "the mask head is not built"
    f = head.get_config()["upsample_factor"]
    if (tuple(deconv.kernel_size) != (f, f) or tuple(deconv.strides) != (f, f)
            or deconv.padding != "valid" or tuple(deconv.dilation_rate) != (1, 1)
            or deconv.output_padding is not None or deconv.data_format != "channels_last"):
        return "its upsampling is not an f x f, stride f, valid, channels-last deconvolution"
    if deconv.activation is not tf_keras.activations.linear:
        return "its upsampling layer has an activation of its own"
    if deconv.compute_dtype == "float32" and not in_float32:
        return "it computes in float32, where the rewrite measured no faster"
    if (deconv.name, norm.name) not in folded.folded:
        return "the upsampling's batch norm is not folded into it"
    return ""


def _upsampling_weights(head):
    """(1x1 kernel [1, 1, C_in, f*f*C_out], bias [f*f*C_out]) in the deconvolution's
    compute dtype, from its folded float32 kernel and bias (or the norm's folded bias)."""
    deconv, norm = head._deconv, head._deconv_bn  # noqa: SLF001
    f = head.get_config()["upsample_factor"]
    kernel = tf.cast(tf.convert_to_tensor(deconv.kernel), tf.float32)  # [f, f, out, in]
    c_out, c_in = int(kernel.shape[2]), int(kernel.shape[3])
    pointwise = tf.reshape(tf.transpose(kernel, [3, 0, 1, 2]), [1, 1, c_in, f * f * c_out])
    if deconv.use_bias:
        bias = tf.cast(tf.convert_to_tensor(deconv.bias), tf.float32)
    else:
        bias = getattr(norm, "tfmask_folded_bias", None)
        bias = tf.zeros([c_out]) if bias is None else tf.convert_to_tensor(bias, tf.float32)
    dtype = deconv.compute_dtype
    return (tf.Variable(tf.cast(pointwise, dtype), trainable=False,
                        name="mask-upsampling_pointwise_kernel"),
            tf.Variable(tf.cast(tf.tile(bias, [f * f]), dtype), trainable=False,
                        name="mask-upsampling_pointwise_bias"))


def _call(self, inputs, training=None):
    """Model Garden's ``MaskHead.call`` with the upsampling as a fused 1x1 convolution and
    ``depth_to_space``. ``inputs``: ROI features [B, K, h, w, C] and classes [B, K] (K
    static, or dynamic as :class:`~tfmask.modeling.foreground_masks.ForegroundMaskHead`
    takes it); returns mask logits [B, K, f*h, f*w] of each ROI's class (or
    class-agnostic)."""
    config = self.get_config()
    roi_features, roi_classes = inputs
    height, width, channels = roi_features.shape[2:]
    x = tf.reshape(roi_features, [-1, height, width, channels])
    for conv, norm in zip(self._convs, self._conv_norms):  # noqa: SLF001
        x = self._activation(norm(conv(x)))  # noqa: SLF001
    x = tf.nn.conv2d(tf.cast(x, self.tfmask_pointwise_kernel.dtype),
                     self.tfmask_pointwise_kernel, strides=1, padding="VALID")
    x = self._activation(tf.nn.bias_add(x, self.tfmask_pointwise_bias))  # noqa: SLF001
    f = config["upsample_factor"]
    logits = self._mask_regressor(tf.nn.depth_to_space(x, f))  # noqa: SLF001
    mask_hw = [height * f, width * f]
    rois = tf.shape(roi_features)[:2]  # [B, K]
    if config["class_agnostic"]:
        logits = tf.reshape(logits, tf.concat([rois, mask_hw], axis=0))
    else:
        logits = tf.reshape(logits, tf.concat([rois, [*mask_hw, config["num_classes"]]], 0))
        logits = tf.gather(logits, tf.cast(roi_classes, tf.int32), axis=-1, batch_dims=2)
    logits.set_shape([*roi_features.shape[:2], *mask_hw])
    return logits


def rewrite_mask_upsampling(model, folded, in_float32: bool = False) -> str:
    """Rewrites ``model.mask_head``'s upsampling in place (see the module docstring);
    ``folded``: the :class:`~tfmask.export.fold_norms.FoldReport` of this model.
    A head computing in float32 is left as it is unless ``in_float32`` (measured no
    faster there: module docstring).
    Returns '' when rewritten, else why it was left as it is (the head then runs as
    Model Garden builds it)."""
    head = getattr(model, "mask_head", None)
    if head is None:
        return "the model has no mask head"
    why = _why_not(head, folded, in_float32)
    if why:
        return why
    head.tfmask_pointwise_kernel, head.tfmask_pointwise_bias = _upsampling_weights(head)
    head.call = types.MethodType(_call, head)
    return ""
