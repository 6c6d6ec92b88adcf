"""The mask branch trains on foreground ROIs only: same loss and gradients, fewer ROIs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras
from official.vision.losses import maskrcnn_losses
from official.vision.modeling.heads import instance_heads
from official.vision.modeling.layers import mask_sampler

from tfmask.modeling.foreground_masks import (ForegroundMaskHead, ForegroundMaskSampler,
                                              foreground_prefix)

K, MASK, CHANNELS, CLASSES = 24, 28, 8, 3
FOREGROUND = (5, 11)  # foreground ROIs of the two images; 11 is the prefix kept


def _candidates():
    """Two images of 40 candidate ROIs, foreground scattered among background ones."""
    rng = np.random.default_rng(0)
    n = 40
    yx = rng.uniform(0, 60, (2, n, 2))
    rois = np.concatenate([yx, yx + rng.uniform(8, 30, (2, n, 2))], -1).astype(np.float32)
    classes = np.zeros((2, n), np.int32)
    for b, count in enumerate(FOREGROUND):
        classes[b, rng.choice(n, count, replace=False)] = rng.integers(1, CLASSES, count)
    indices = np.where(classes > 0, rng.integers(0, 4, (2, n)), -1).astype(np.int32)
    gt_boxes = rois + rng.uniform(-2, 2, rois.shape).astype(np.float32)
    gt_masks = (rng.uniform(size=(2, 4, 56, 56)) > 0.5).astype(np.float32)
    return [tf.constant(a) for a in (rois, gt_boxes, classes, indices, gt_masks)]


def _samplers():
    return (mask_sampler.MaskSampler(MASK, K), ForegroundMaskSampler(MASK, K))


def test_foreground_prefix_is_the_largest_count_and_at_least_one():
    assert int(foreground_prefix(tf.constant([[1, 0, 2, 0], [0, 0, 0, 0]]))) == 2
    assert int(foreground_prefix(tf.zeros([2, 5], tf.int32))) == 1
    assert int(foreground_prefix(tf.zeros([0, 5], tf.int32))) == 1


def test_sampler_keeps_every_foreground_roi_and_drops_only_background():
    mg, fg = _samplers()
    rois, classes, masks = mg(*_candidates())
    got_rois, got_classes, got_masks = fg(*_candidates())
    n = max(FOREGROUND)
    assert got_classes.shape[1] == n and rois.shape[1] == K
    np.testing.assert_array_equal(got_rois, rois[:, :n])
    np.testing.assert_array_equal(got_classes, classes[:, :n])
    np.testing.assert_array_equal(got_masks, masks[:, :n])
    # What was dropped is background; what is kept holds all the foreground.
    assert not np.any(classes.numpy()[:, n:])
    assert [int(c) for c in np.sum(got_classes.numpy() > 0, 1)] == list(FOREGROUND)


def _heads():
    """Model Garden's head and the foreground head with the same weights; batch norm in
    inference mode (the one intended difference is which ROIs its statistics see)."""
    config = dict(num_classes=CLASSES, num_convs=2, num_filters=16, upsample_factor=2)
    mg, fg = instance_heads.MaskHead(**config), ForegroundMaskHead(**config)
    features = tf.random.stateless_normal([2, K, MASK // 2, MASK // 2, CHANNELS], [1, 2])
    classes = tf.zeros([2, K], tf.int32)
    mg([features, classes]), fg([features, classes])
    fg.set_weights(mg.get_weights())
    for head in (mg, fg):
        for layer in head._conv_norms + [head._deconv_bn]:
            layer.trainable = False
    return mg, fg, features


def test_head_takes_a_dynamic_roi_count_and_matches_model_gardens():
    mg, fg, features = _heads()
    _, classes, _ = mask_sampler.MaskSampler(MASK, K)(*_candidates())
    n = max(FOREGROUND)

    @tf.function(input_signature=[tf.TensorSpec([2, None, *features.shape[2:]]),
                                  tf.TensorSpec([2, None], tf.int32)])
    def dynamic(f, c):
        out = fg([f, c], training=True)
        assert out.shape.as_list() == [2, None, MASK, MASK]  # static mask size for the loss
        return out

    want = mg([features, classes], training=True)[:, :n]
    got = dynamic(features[:, :n], classes[:, :n])
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_mask_loss_and_gradients_equal_model_gardens():
    mg_head, fg_head, features = _heads()
    mg_sampler, fg_sampler = _samplers()
    loss = maskrcnn_losses.MaskrcnnLoss()

    def run(sampler, head):
        _, classes, targets = sampler(*_candidates())
        n = tf.shape(classes)[1]
        with tf.GradientTape() as tape:
            logits = head([features[:, :n], classes], training=True)
            value = loss(logits, targets, classes)
        return value, tape.gradient(value, head.trainable_variables)

    want, want_grads = run(mg_sampler, mg_head)
    got, got_grads = run(fg_sampler, fg_head)
    assert float(want) > 0
    np.testing.assert_allclose(float(got), float(want), rtol=1e-5)
    assert len(got_grads) == len(want_grads) > 0
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


def test_the_tiny_models_mask_branch_is_swapped_and_old_checkpoints_restore(tmp_path,
                                                                         tmp_path_factory):
    from official.vision.modeling import factory as mg_factory

    import export_testlib
    from tfmask.config.translate import translate
    from tfmask.modeling import factory

    params = translate(export_testlib.dataset(tmp_path_factory) / "pipeline.config").params
    model_cfg = params.task.model
    spec = tf_keras.layers.InputSpec(shape=[None] + list(model_cfg.input_size))

    def built(build):
        tf_keras.backend.clear_session()  # the same layer names in both models
        m = build()
        m(tf_keras.Input(model_cfg.input_size), image_shape=tf_keras.layers.Input([2]),
          training=False)
        return m, [v.name for v in m.variables]

    plain, plain_names = built(lambda: mg_factory.build_maskrcnn(input_specs=spec,
                                                                  model_config=model_cfg))
    model, names = built(lambda: factory.build_maskrcnn(spec, model_cfg))
    assert isinstance(model.mask_sampler, ForegroundMaskSampler)
    assert isinstance(model.mask_head, ForegroundMaskHead)
    # A checkpoint of Model Garden's own model (what earlier tfmask versions trained)
    # restores into it variable for variable.
    assert names == plain_names
    path = tf.train.Checkpoint(model=plain).save(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(model=model).read(path).assert_existing_objects_matched()
    for a, b in zip(model.variables, plain.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_static_roi_count_goes_through_model_gardens_call():
    shape = [2, K, 7, 7, 4]
    head = ForegroundMaskHead(num_classes=CLASSES, num_convs=1, num_filters=8)
    out = head([tf.zeros(shape), tf.ones(shape[:2], tf.int32)])
    assert out.shape.as_list() == [2, K, 14, 14]
