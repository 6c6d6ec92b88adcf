"""The mask head's upsampling as a fused 1x1 convolution and depth_to_space
(``tfmask.export.mask_upsampling``), alone and in an export."""

from __future__ import annotations

import types

import numpy as np
import pytest
import tensorflow as tf

import export_testlib
from tfmask.export import fold_norms
from tfmask.export.mask_upsampling import rewrite_mask_upsampling

from test_fold_norms import _randomize_norms


def _head(upsample_factor: int = 2, class_agnostic: bool = False, policy: str = "float32",
          cls=None):
    """(a built Model Garden MaskHead with norms and biases far from the identity, its
    traced call, its inputs: ROI features [2, 3, 6, 6, 8] and classes [2, 3])."""
    import tf_keras
    from official.vision.modeling.heads import instance_heads

    from tfmask.export.precision import compute_policy

    tf_keras.utils.set_random_seed(2)
    with compute_policy(policy):
        head = (cls or instance_heads.MaskHead)(num_classes=4, upsample_factor=upsample_factor,
                                       num_convs=2, num_filters=8, class_agnostic=class_agnostic)
        features = tf.random.stateless_normal([2, 3, 6, 6, 8], [5, 6])
        classes = tf.constant([[0, 1, 3], [2, 2, 1]])
        head([features, classes])
    _randomize_norms(head)
    for layer in head.submodules:  # every bias away from zero
        if isinstance(layer, tf_keras.layers.Layer) and getattr(layer, "bias", None) is not None:
            layer.bias.assign(tf.random.stateless_normal(layer.bias.shape, [7, 8]))
    call = tf.function(lambda f, c: head([f, c], training=False))
    return head, call, (features, classes)


def _ops(fn, inputs) -> set:
    return {op.type for op in fn.get_concrete_function(*inputs).graph.get_operations()}


@pytest.mark.parametrize("upsample_factor,class_agnostic", [(2, False), (3, True)])
def test_the_rewritten_head_gives_the_same_masks(upsample_factor, class_agnostic):
    head, call, inputs = _head(upsample_factor, class_agnostic)
    want = call(*inputs).numpy()
    folded = fold_norms.fold_in_graph(head, call.get_concrete_function(*inputs).graph)
    assert ("mask-upsampling", "mask-deconv-bn") in folded.folded

    assert rewrite_mask_upsampling(types.SimpleNamespace(mask_head=head), folded,
                                   in_float32=True) == ""

    rewritten = tf.function(lambda f, c: head([f, c], training=False))
    got = rewritten(*inputs).numpy()
    side = 6 * upsample_factor
    assert got.shape == want.shape == (2, 3, side, side)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    ops = _ops(rewritten, inputs)
    assert "DepthToSpace" in ops and "Conv2DBackpropInput" not in ops
    assert not any(op.startswith("FusedBatchNorm") for op in ops)


def test_a_bfloat16_head_computes_the_upsampling_in_bfloat16():
    head, call, inputs = _head(policy="bfloat16")
    folded = fold_norms.fold_in_graph(head, call.get_concrete_function(*inputs).graph)
    want = tf.function(lambda f, c: head([f, c], training=False))(*inputs)  # folded only
    assert rewrite_mask_upsampling(types.SimpleNamespace(mask_head=head), folded) == ""
    assert head.tfmask_pointwise_kernel.dtype == tf.bfloat16
    assert head.tfmask_pointwise_kernel.shape == (1, 1, 8, 4 * 8)
    got = tf.function(lambda f, c: head([f, c], training=False))(*inputs)
    assert got.dtype == tf.bfloat16
    # The same bfloat16 products and weights: at most a last-bit difference of the sums.
    got, want = (tf.cast(t, tf.float32).numpy() for t in (got, want))
    np.testing.assert_allclose(got, want, rtol=0.01, atol=0.01 * np.abs(want).max())


def test_a_head_whose_upsampling_norm_is_not_folded_is_left_as_it_is():
    head, call, inputs = _head()
    original_call = head.call
    why = rewrite_mask_upsampling(types.SimpleNamespace(mask_head=head), fold_norms.FoldReport(),
                                  in_float32=True)
    assert why == "the upsampling's batch norm is not folded into it"
    assert head.call == original_call and not hasattr(head, "tfmask_pointwise_kernel")
    assert "Conv2DBackpropInput" in _ops(tf.function(lambda f, c: head([f, c])), inputs)


def test_a_model_without_model_gardens_mask_head_is_left_as_it_is():
    assert rewrite_mask_upsampling(types.SimpleNamespace(), fold_norms.FoldReport()) == \
        "the model has no mask head"
    other = types.SimpleNamespace(mask_head=object())
    assert "not Model Garden's MaskHead" in rewrite_mask_upsampling(other, fold_norms.FoldReport())


def test_the_tiny_mask_rcnn_detects_the_same_once_rewritten(tmp_path_factory):
    from tfmask.config.translate import translate
    from tfmask.export.exporter import restore_model
    from tfmask.export.serving import Preprocessing, detect
    from tfmask.export.verify import compare_outputs, verification_image

    params = translate(export_testlib.dataset(tmp_path_factory) / "pipeline.config").params
    model = restore_model(params, tf.train.latest_checkpoint(
        str(export_testlib.untrained(tmp_path_factory))))
    _randomize_norms(model)
    prep = Preprocessing.from_model_config(params.task.model)
    image = tf.constant(verification_image()[None])
    run = lambda: tf.function(lambda x: detect(model, prep, x))(image)  # noqa: E731
    before = run()
    folded = fold_norms.fold_batch_norms(model, prep)

    # tfmask restores Model Garden's head as ForegroundMaskHead; float32 only when asked.
    assert rewrite_mask_upsampling(model, folded) == \
        "it computes in float32, where the rewrite measured no faster"
    assert rewrite_mask_upsampling(model, folded, in_float32=True) == ""

    diffs = compare_outputs(before, run(), tolerance=1e-4,
                            names=("the model", "the rewritten model"))
    assert diffs["num_detections"] == 0 and diffs["detection_masks"] < 1e-3


def test_a_dynamic_roi_count_is_rewritten_too():
    """tfmask trains (and restores) Model Garden's head as ForegroundMaskHead, which also
    takes a dynamic ROI count."""
    from tfmask.modeling.foreground_masks import ForegroundMaskHead

    head, call, inputs = _head(cls=ForegroundMaskHead)
    dynamic = tf.function(lambda f, c: head([f, c], training=False),
                          input_signature=[tf.TensorSpec([2, None, 6, 6, 8]),
                                           tf.TensorSpec([2, None], tf.int32)])
    want = dynamic(*inputs).numpy()
    folded = fold_norms.fold_in_graph(head, call.get_concrete_function(*inputs).graph)
    assert rewrite_mask_upsampling(types.SimpleNamespace(mask_head=head), folded,
                                   in_float32=True) == ""
    again = tf.function(lambda f, c: head([f, c], training=False),
                        input_signature=dynamic.input_signature)
    got = again(*inputs)
    assert got.shape == (2, 3, 12, 12)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    assert "DepthToSpace" in _ops(again, inputs)
