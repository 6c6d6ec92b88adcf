"""Stride-sized transposed convolutions as 1x1 conv + depth_to_space (``tfmask.export.upsampling``)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfmask.export.upsampling import rewrite_transposed_convs


def _ops(fn, x, op_type: str) -> int:
    return sum(op.type == op_type for op in fn.get_concrete_function(x).graph.get_operations())


def test_the_rewrite_computes_the_same_and_leaves_other_transposed_convs():
    import tf_keras

    layers = tf_keras.layers
    x = tf_keras.Input([5, 7, 6])
    up2 = layers.Conv2DTranspose(4, 2, strides=2, activation="relu", name="up2")(x)
    up3 = layers.Conv2DTranspose(3, 3, strides=3, use_bias=False, name="up3")(up2)
    same = layers.Conv2DTranspose(2, 3, strides=2, padding="same", name="same")(up3)
    model = tf_keras.Model(x, [up2, up3, same])
    model.get_layer("up2").bias.assign([0.5, -0.25, 1.0, -2.0])
    images = tf.random.stateless_normal([2, 5, 7, 6], [5, 6])
    before_fn = tf.function(lambda t: model(t))
    before = [t.numpy() for t in before_fn(images)]
    assert _ops(before_fn, images, "Conv2DBackpropInput") == 3

    assert rewrite_transposed_convs(model) == ["up2", "up3"]

    after_fn = tf.function(lambda t: model(t))
    after = [t.numpy() for t in after_fn(images)]
    assert [a.shape for a in after] == [(2, 10, 14, 4), (2, 30, 42, 3), (2, 60, 84, 2)]
    for want, got in zip(before, after):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert _ops(after_fn, images, "Conv2DBackpropInput") == 1  # "same" padding stays
    assert _ops(after_fn, images, "DepthToSpace") == 2
