"""A bfloat16 export's weights stored in bfloat16 (``tfmask.export.precision.store_in_compute_dtype``)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfmask.export.precision import compute_policy, store_in_compute_dtype


def _model(precision: str):
    """Conv, transposed conv, batch norm and dense layers built under ``precision``."""
    import tf_keras

    layers = tf_keras.layers
    tf_keras.utils.set_random_seed(0)
    with compute_policy(precision):
        x = tf_keras.Input([8, 8, 3])
        y = layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(x))
        y = layers.Conv2DTranspose(4, 2, strides=2, use_bias=False)(y)
        y = layers.Dense(5)(layers.Flatten()(y))
        return tf_keras.Model(x, y)


def _variable_reads_cast(model, image) -> int:
    graph = tf.function(model).get_concrete_function(image).graph
    return sum(op.type == "Cast" and op.inputs[0].op.type == "ReadVariableOp"
               for op in graph.get_operations())


def test_bfloat16_weights_are_stored_in_bfloat16_with_the_same_outputs():
    model = _model("bfloat16")
    image = tf.random.stateless_uniform([2, 8, 8, 3], [1, 2])
    before = model(image).numpy()
    assert _variable_reads_cast(model, image) == 5  # conv kernel + bias, deconv, dense x2

    assert store_in_compute_dtype(model) == 5
    assert np.array_equal(model(image).numpy(), before)  # the same rounding, once
    assert _variable_reads_cast(model, image) == 0
    dtypes = [v.true_dtype.name for v in model.variables if hasattr(v, "true_dtype")]
    assert dtypes == ["bfloat16"] * 5, dtypes
    # The norm keeps its float32 statistics (Keras does not autocast them).
    norms = [v for v in model.variables if "moving_" in v.name]
    assert norms and all(v.dtype == tf.float32 for v in norms)
    assert store_in_compute_dtype(model) == 0  # nothing left to store


def test_a_float32_model_is_left_as_it_is():
    model = _model("float32")
    before = [v.numpy() for v in model.variables]
    assert store_in_compute_dtype(model) == 0
    assert all(v.dtype == tf.float32 for v in model.variables)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.variables))


def test_the_bfloat16_export_stores_bfloat16_and_its_checkpoint_float32(tmp_path_factory,
                                                                       monkeypatch):
    import export_testlib
    from tfmask import cpu_features
    from tfmask.export.exporter import export_model

    monkeypatch.setattr(cpu_features, "has_native_bfloat16", lambda *a: True)
    config = export_testlib.dataset(tmp_path_factory) / "pipeline.config"
    out = tmp_path_factory.mktemp("export") / "out"
    result = export_model(config, export_testlib.untrained(tmp_path_factory), out,
                          mixed_precision="bfloat16")
    assert result.compute_dtype_weights > 20

    def dtypes(prefix):  # every saved tensor's dtype (the SavedModel's keys carry no names)
        reader = tf.train.load_checkpoint(str(prefix))
        return [v.name for k, v in reader.get_variable_to_dtype_map().items()
                if k.endswith("VARIABLE_VALUE")]
    saved = dtypes(out / "saved_model" / "variables" / "variables")
    kept = dtypes(out / "checkpoint" / "ckpt-0")
    # Plus the mask head's 1x1 upsampling kernel and bias, made in bfloat16
    # (tfmask/export/mask_upsampling.py).
    assert result.upsampling_rewritten
    assert saved.count("bfloat16") == result.compute_dtype_weights + 2
    assert "bfloat16" not in kept  # the trained weights, unrounded
    assert kept.count("float32") >= result.compute_dtype_weights
