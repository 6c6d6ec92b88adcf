"""Inception-ResNet-v2 backbone: level shapes, Keras parity, .h5 weight loading.

Keras' own ``InceptionResNetV2(include_top=False, weights=None)`` is the
reference: our weights must have its shapes, and a file it writes with
``save_weights`` must load into ours weight for weight, whatever number its
auto-named layers start from.
"""

from __future__ import annotations

import os
import re
from collections import Counter

import h5py
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from official.vision.ops import preprocess_ops  # noqa: E402

from tfmask.errors import DataError  # noqa: E402
from tfmask.modeling.inception_resnet_v2 import (  # noqa: E402
    LEVEL_CHANNELS, InceptionResNetV2Backbone, NormalizedToSymmetricRange, ResidualScale,
    build_inception_resnet_v2)
from tfmask.modeling.keras_h5 import load_keras_h5_weights  # noqa: E402

SIZES_HW = [(64, 96), (128, 128), (160, 224)]
AUTO = re.compile(r"^(conv2d|batch_normalization|activation)(?:_(\d+))?$")


@pytest.fixture(scope="module")
def backbones():
    """One backbone per size; the largest with sync BN, custom norm args and L2."""
    models = {}
    for size_hw in SIZES_HW:
        spec = tf_keras.layers.InputSpec(shape=[None, *size_hw, 3])
        if size_hw == SIZES_HW[-1]:
            models[size_hw] = build_inception_resnet_v2(
                spec, kernel_regularizer=tf_keras.regularizers.L2(1e-4), norm_momentum=0.9,
                norm_epsilon=1e-4, use_sync_bn=True)
        else:
            models[size_hw] = build_inception_resnet_v2(spec)
    return models


@pytest.fixture(scope="module")
def keras_irv2():
    """Keras' IRv2 with distinct random values in every weight (variances > 0)."""
    model = tf_keras.applications.InceptionResNetV2(include_top=False, weights=None)
    rng = np.random.default_rng(0)
    tf_keras.backend.batch_set_value(
        [(w, rng.uniform(0.5, 1.5, tuple(w.shape)).astype(np.float32)) for w in model.weights])
    return model


@pytest.fixture(scope="module")
def keras_h5(keras_irv2, tmp_path_factory):
    path = tmp_path_factory.mktemp("irv2") / "irv2.h5"
    keras_irv2.save_weights(str(path))
    return path


def auto_rank_names(names):
    """Maps each auto-named layer name to (prefix, rank by number); bare = number 0."""
    numbered = {}
    for name in names:
        m = AUTO.match(name)
        if m:
            numbered.setdefault(m.group(1), []).append((int(m.group(2) or 0), name))
    return {name: (prefix, rank) for prefix, items in numbered.items()
            for rank, (_, name) in enumerate(sorted(items))}


def as_str(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def renumbered_copy(src, dst, start: int) -> None:
    """Copies a Keras weights h5, renumbering auto names by rank from ``start``."""
    def rename(name, ranks):
        first, sep, rest = name.partition("/")
        if first not in ranks:
            return name
        prefix, rank = ranks[first]
        number = start + rank
        return (f"{prefix}_{number}" if number else prefix) + sep + rest

    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        layer_names = [as_str(n) for n in fin.attrs["layer_names"]]
        ranks = auto_rank_names(layer_names)
        for key, value in fin.attrs.items():
            fout.attrs[key] = value
        fout.attrs["layer_names"] = [rename(n, ranks).encode("utf8") for n in layer_names]
        for name in layer_names:
            gin, gout = fin[name], fout.create_group(rename(name, ranks))
            weight_names = [as_str(w) for w in gin.attrs["weight_names"]]
            gout.attrs["weight_names"] = [rename(w, ranks).encode("utf8") for w in weight_names]
            for w in weight_names:
                gout.create_dataset(rename(w, ranks), data=gin[w][()])


def write_h5(path, layers) -> None:
    """A minimal Keras-format weights file: ``{layer: {weight name: array}}``."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode("utf8") for n in layers]
        for name, weights in layers.items():
            g = f.create_group(name)
            g.attrs["weight_names"] = [w.encode("utf8") for w in weights]
            for w, value in weights.items():
                g.create_dataset(w, data=value)


@pytest.mark.parametrize("size_hw", SIZES_HW)
def test_levels_have_exact_strides_and_channels(backbones, size_hw):
    model = backbones[size_hw]
    height, width = size_hw
    outputs = model(tf.zeros([1, height, width, 3]))
    assert sorted(outputs) == sorted(LEVEL_CHANNELS) == ["2", "3", "4", "5"]
    for level, channels in LEVEL_CHANNELS.items():
        expected = [1, height // 2 ** int(level), width // 2 ** int(level), channels]
        assert outputs[level].shape.as_list() == expected
        assert model.output_specs[level].as_list() == [None, *expected[1:]]


def test_weight_shapes_and_params_match_keras(backbones, keras_irv2):
    ours = backbones[SIZES_HW[0]]
    assert len(ours.weights) == len(keras_irv2.weights) == 896
    assert Counter(tuple(w.shape) for w in ours.weights) == Counter(
        tuple(w.shape) for w in keras_irv2.weights)
    assert ours.count_params() == keras_irv2.count_params() == 54_336_736
    assert len(ours.trainable_weights) == len(keras_irv2.trainable_weights)


def test_every_conv_and_pool_pads_same_and_explicit_names_match_keras(backbones, keras_irv2):
    ours = backbones[SIZES_HW[0]]
    assert all(layer.padding == "same" for layer in ours.layers if hasattr(layer, "padding"))
    explicit = {l.name for l in keras_irv2.layers if l.weights and not AUTO.match(l.name)}
    assert explicit <= {l.name for l in ours.layers}
    assert {"mixed_5b", "mixed_6a", "mixed_7a", "conv_7b_ac", "block8_10_conv"} <= {
        l.name for l in ours.layers}
    assert "block8_10_ac" not in {l.name for l in ours.layers}  # last block is linear
    scales = {l.name: l.scale for l in ours.layers if isinstance(l, ResidualScale)}
    assert len(scales) == 40 and scales["block35_1"] == pytest.approx(0.17)
    assert scales["block17_20"] == pytest.approx(0.1) and scales["block8_10"] == 1.0


def test_options_reach_every_conv_and_batch_norm(backbones):
    model = backbones[SIZES_HW[-1]]
    convs = [l for l in model.layers if isinstance(l, tf_keras.layers.Conv2D)]
    norms = [l for l in model.layers if isinstance(l, tf_keras.layers.BatchNormalization)]
    assert len(model.losses) == len(convs) == 244
    assert all(isinstance(l, tf_keras.layers.experimental.SyncBatchNormalization)
               for l in norms)
    assert all(l.momentum == 0.9 and l.epsilon == 1e-4 and not l.scale for l in norms)


def test_config_round_trip_rebuilds_the_same_model(backbones):
    model = backbones[SIZES_HW[0]]
    clone = InceptionResNetV2Backbone.from_config(model.get_config())
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    assert clone.output_specs == model.output_specs
    layer = ResidualScale.from_config(ResidualScale(0.2, name="block8_1").get_config())
    assert layer.name == "block8_1" and layer.scale == 0.2 and not layer.weights


def test_input_layer_maps_model_garden_normalization_to_keras_range():
    # The Mask R-CNN parser normalizes uint8 images (to [0, 1], then MEAN_NORM/STDDEV_NORM).
    pixel_value = np.array([[[0, 0, 0], [128, 64, 200], [255, 255, 255]]], np.uint8)
    normalized = preprocess_ops.normalize_image(tf.constant(pixel_value))[None]
    symmetric = NormalizedToSymmetricRange()(normalized).numpy()[0]
    np.testing.assert_allclose(symmetric, pixel_value / 127.5 - 1.0, atol=1e-5)


def test_mid_gray_image_gives_finite_features(backbones):
    model = backbones[SIZES_HW[0]]
    gray = tf.fill([*SIZES_HW[0], 3], tf.constant(128, tf.uint8))
    outputs = model(preprocess_ops.normalize_image(gray)[None], training=False)
    for level, value in outputs.items():
        assert np.all(np.isfinite(value.numpy())), level


@pytest.mark.parametrize("start", [None, 0, 1])
def test_keras_h5_round_trip_loads_every_weight(backbones, keras_irv2, keras_h5, tmp_path,
                                                start):
    path = keras_h5
    if start is not None:
        path = tmp_path / f"renumbered_from_{start}.h5"
        renumbered_copy(keras_h5, path, start)
    ours = backbones[(128, 128)]
    tf_keras.backend.batch_set_value([(w, np.zeros(w.shape, np.float32)) for w in ours.weights])

    report = load_keras_h5_weights(ours, path)

    assert report.missing == [] and report.unused == []
    assert len(report.matched) == len(ours.weights) == 896
    ours_by_name = {l.name: l for l in ours.layers}
    ranks = auto_rank_names([l.name for l in keras_irv2.layers])
    compared = 0
    for layer in keras_irv2.layers:
        if not layer.weights:
            continue
        prefix, rank = ranks.get(layer.name, (None, None))
        name = f"{prefix}_{rank + 1}" if prefix else layer.name  # ours count from 1
        for theirs, mine in zip(layer.weights, ours_by_name[name].weights, strict=True):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
            compared += 1
    assert compared == 896


def test_partial_file_reports_missing_and_unused(backbones, tmp_path):
    ours = backbones[(128, 128)]
    kernel = np.full((1, 1, 2080, 1536), 0.5, np.float32)
    path = tmp_path / "partial.h5"
    write_h5(path, {"conv_7b": {"conv_7b/kernel:0": kernel},
                    "predictions": {"predictions/kernel:0": np.zeros((1536, 1000), np.float32)},
                    "avg_pool": {}})

    report = load_keras_h5_weights(ours, path)

    assert report.matched == ["conv_7b/kernel"]
    assert report.unused == ["predictions/kernel:0"]
    assert len(report.missing) == 895 and "conv_7b/kernel" not in report.missing
    np.testing.assert_array_equal(ours.get_layer("conv_7b").kernel.numpy(), kernel)


def _not_hdf5(path):
    path.write_text("this is not an HDF5 file\n")


def _no_layer_names(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))


def _wrong_kernel_shape(path):
    write_h5(path, {"block17_3_conv": {
        "block17_3_conv/kernel:0": np.zeros((1, 1, 384, 1089), np.float32),
        "block17_3_conv/bias:0": np.zeros((1088,), np.float32)}})


def _wrong_auto_count(path):
    write_h5(path, {"conv2d": {"conv2d/kernel:0": np.zeros((3, 3, 3, 32), np.float32)}})


@pytest.mark.parametrize("write, kind, words", [
    (None, "missing_file", ["not found"]),
    (_not_hdf5, "unreadable", ["not an HDF5 file"]),
    (_no_layer_names, "unreadable", ["layer_names"]),
    (_wrong_kernel_shape, "shape_mismatch", ["block17_3_conv", "(1, 1, 384, 1089)",
                                             "(1, 1, 384, 1088)"]),
    (_wrong_auto_count, "shape_mismatch", ["1 'conv2d' layers", "the model 203"]),
], ids=["missing", "not_h5", "no_layer_names", "wrong_shape", "auto_count"])
def test_bad_files_raise_data_error_naming_the_file(backbones, tmp_path, write, kind, words):
    path = tmp_path / "weights.h5"
    if write is not None:
        write(path)
    ours = backbones[SIZES_HW[0]]
    before = ours.get_layer("block17_3_conv").kernel.numpy()
    with pytest.raises(DataError) as info:
        load_keras_h5_weights(ours, path)
    assert info.value.path == str(path) and info.value.kind == kind
    for word in words:
        assert word in str(info.value)
    np.testing.assert_array_equal(ours.get_layer("block17_3_conv").kernel.numpy(), before)
