"""Folding inference batch norms into their convolutions (``tfmask.export.fold_norms``)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import export_testlib
from tfmask.export import fold_norms


def _randomize_norms(model, seed: int = 1) -> None:
    """Statistics and affine parameters far from the identity, so a wrong fold shows."""
    rng = np.random.default_rng(seed)
    for v in model.variables:
        name = v.name.split("/")[-1]
        if name.startswith("moving_mean"):
            v.assign(rng.normal(0.0, 0.3, v.shape))
        elif name.startswith("moving_variance"):
            v.assign(rng.uniform(0.3, 3.0, v.shape))
        elif name.startswith("gamma"):
            v.assign(rng.uniform(0.3, 2.0, v.shape))
        elif name.startswith("beta"):
            v.assign(rng.normal(0.0, 0.3, v.shape))


def _norm_ops(graph) -> int:
    return sum(op.type.startswith("FusedBatchNorm") for op in graph.get_operations())


def _small_model():
    """Every case: a conv without bias, one with a bias, a transposed conv, a conv shared
    by two branches (each with its own norm), a norm after an addition."""
    import tf_keras

    layers = tf_keras.layers
    x = tf_keras.Input([12, 16, 3])
    a = layers.ReLU()(layers.BatchNormalization(name="bn_plain")(
        layers.Conv2D(8, 3, padding="same", use_bias=False, name="plain")(x)))
    b = layers.BatchNormalization(name="bn_biased")(
        layers.Conv2D(8, 3, padding="same", use_bias=True, name="biased")(a))
    c = layers.BatchNormalization(name="bn_up")(
        layers.Conv2DTranspose(6, 2, strides=2, use_bias=False, name="up")(b))
    shared = layers.Conv2D(8, 1, use_bias=False, name="shared")
    d1 = layers.BatchNormalization(name="bn_shared_1")(shared(a))
    d2 = layers.BatchNormalization(name="bn_shared_2")(shared(b))
    e = layers.BatchNormalization(name="bn_sum")(layers.Add()([d1, d2]))
    model = tf_keras.Model(x, [c, e])
    _randomize_norms(model)
    for layer in model.layers:  # biases away from zero too
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(tf.random.stateless_normal(layer.bias.shape, [3, 4]))
    return model


def test_folding_keeps_the_outputs_and_removes_the_folded_norms():
    model = _small_model()
    images = tf.random.stateless_normal([2, 12, 16, 3], [1, 2])
    call = tf.function(lambda t: model(t, training=False))
    before = [t.numpy() for t in call(images)]
    graph = call.get_concrete_function(images).graph
    assert _norm_ops(graph) == 6

    report = fold_norms.fold_in_graph(model, graph)

    assert sorted(report.folded) == [("biased", "bn_biased"), ("plain", "bn_plain"),
                                     ("up", "bn_up")]
    assert report.left == {
        "bn_shared_1": "its convolution or the norm is called more than once",
        "bn_shared_2": "its convolution or the norm is called more than once",
        "bn_sum": "its input comes from AddV2, not a convolution"}
    after_fn = tf.function(lambda t: model(t, training=False))
    after = [t.numpy() for t in after_fn(images)]
    for want, got in zip(before, after):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert _norm_ops(after_fn.get_concrete_function(images).graph) == 3
    # A conv without a bias keeps none: the norm's layer adds the folded bias.
    assert model.get_layer("plain").bias is None
    assert model.get_layer("bn_plain").tfmask_folded_bias.shape == (8,)
    assert not hasattr(model.get_layer("bn_biased"), "tfmask_folded_bias")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(Preprocessing, the untrained tiny Mask R-CNN with randomized norms)."""
    from tfmask.config.translate import translate
    from tfmask.export.exporter import restore_model
    from tfmask.export.serving import Preprocessing

    params = translate(export_testlib.dataset(tmp_path_factory) / "pipeline.config").params
    ckpt = tf.train.latest_checkpoint(str(export_testlib.untrained(tmp_path_factory)))
    model = restore_model(params, ckpt)
    _randomize_norms(model)
    return Preprocessing.from_model_config(params.task.model), model


def test_the_tiny_mask_rcnn_detects_the_same_once_folded(tiny):
    from tfmask.export.serving import detect
    from tfmask.export.verify import compare_outputs, verification_image

    prep, model = tiny
    image = tf.constant(verification_image()[None])
    run = lambda: tf.function(lambda x: detect(model, prep, x))(image)  # noqa: E731
    before = run()

    report = fold_norms.fold_batch_norms(model, prep)

    # Backbone, FPN, mask head; the RPN head's conv is shared by the levels' norms.
    assert len(report.folded) >= 15
    assert report.left and all("more than once" in why for name, why in report.left.items()
                               if name.startswith("rpn"))
    diffs = compare_outputs(before, run(), tolerance=1e-4,
                            names=("the model", "the folded model"))
    assert diffs["num_detections"] == 0 and diffs["detection_masks"] < 1e-3


def test_the_export_folds_and_its_checkpoint_does_not(tmp_path_factory):
    from tensorflow.core.protobuf import saved_model_pb2

    out, result = export_testlib.exported(tmp_path_factory)
    assert result.folded_norms >= 15
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((out / "saved_model" / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0].graph_def
    norms = {n.name for f in graph.library.function for n in f.node_def
             if n.op.startswith("FusedBatchNorm")}
    # Only the norms left unfolded remain (each under its layer's name scope).
    assert all(any(left in name for left in result.unfolded_norms) for name in norms), norms
    reader = tf.train.load_checkpoint(str(out / "checkpoint" / "ckpt-0"))
    assert not any("tfmask_folded_bias" in key for key in reader.get_variable_to_shape_map())
