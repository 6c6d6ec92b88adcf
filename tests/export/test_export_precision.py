"""``tfmask export --mixed_precision bfloat16``: a bfloat16 graph, float32 outputs, verified."""

from __future__ import annotations

import pytest

import export_testlib
from tfmask import cpu_features
from tfmask.errors import ConfigError


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """(pipeline.config, checkpoint prefix) of the tiny model, freshly initialized."""
    from tfmask.bench.inference import _untrained_checkpoint

    config = export_testlib.dataset(tmp_path_factory) / "pipeline.config"
    return config, str(_untrained_checkpoint(config, tmp_path_factory.mktemp("ckpt")))


def _op_dtypes(saved_model_dir, op_type: str) -> set:
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import dtypes

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0].graph_def
    nodes = [n for f in graph.library.function for n in f.node_def] + list(graph.node)
    return {dtypes.as_dtype(n.attr["T"].type).name for n in nodes if n.op == op_type}


def test_bfloat16_export_computes_in_bfloat16_and_is_verified(untrained, tmp_path,
                                                              monkeypatch):
    import tensorflow as tf

    from tfmask.export.exporter import export_model

    from tfmask.export import exporter

    monkeypatch.setattr(cpu_features, "has_native_bfloat16", lambda *a: True)
    shares = []  # near-tied detections may go either way in bfloat16 (verify.UNPAIRED_SHARE)
    real_verify = exporter.verify_export
    monkeypatch.setattr(exporter, "verify_export",
                        lambda *a: shares.append(a[-1]) or real_verify(*a))
    config, checkpoint = untrained
    result = export_model(config, checkpoint, tmp_path / "bf16", mixed_precision="bfloat16")
    assert result.mixed_precision == "bfloat16"
    assert shares == [0.15] and 0 <= result.unpaired_detections <= 0.15 * 20
    assert "unpaired_detections" not in result.max_abs_diff
    saved = tmp_path / "bf16" / "saved_model"
    assert _op_dtypes(saved, "Conv2D") == {"bfloat16"}
    # The box stages decode in float32 (tfmask/modeling/proposals.py): the exps of the box
    # decoding and the class softmax; Model Garden's layers put bfloat16 ones here.
    assert _op_dtypes(saved, "Softmax") == _op_dtypes(saved, "Exp") == {"float32"}
    # The mask head upsamples with a fused 1x1 conv + depth_to_space (mask_upsampling.py).
    assert result.upsampling_rewritten
    assert _op_dtypes(saved, "DepthToSpace") == {"bfloat16"}
    assert not _op_dtypes(saved, "Conv2DBackpropInput")
    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    outputs = serve.structured_outputs
    assert {k: v.dtype.name for k, v in outputs.items()} == {
        "detection_boxes": "float32", "detection_scores": "float32",
        "detection_classes": "float32", "num_detections": "float32",
        "detection_masks": "float32"}
    # The mixed policy is the export's alone: the next model builds in float32.
    import tf_keras
    assert tf_keras.mixed_precision.global_policy().name == "float32"


def test_float32_export_has_no_bfloat16_convolution(untrained, tmp_path):
    from tfmask.export.exporter import export_model

    config, checkpoint = untrained
    result = export_model(config, checkpoint, tmp_path / "f32")
    assert _op_dtypes(tmp_path / "f32" / "saved_model", "Conv2D") == {"float32"}
    # In float32 the upsampling stays Model Garden's transposed convolution.
    assert not result.upsampling_rewritten
    assert _op_dtypes(tmp_path / "f32" / "saved_model", "Conv2DBackpropInput") == {"float32"}


def test_bfloat16_export_refused_without_native_support_writes_nothing(untrained, tmp_path,
                                                                      monkeypatch):
    import tensorflow as tf

    from tfmask.export.exporter import export_model

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(cpu_features, "has_native_bfloat16", lambda *a: False)
    config, checkpoint = untrained
    with pytest.raises(ConfigError, match="mixed_precision bfloat16 needs a GPU"):
        export_model(config, checkpoint, tmp_path / "out", mixed_precision="bfloat16")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="mixed_precision 'float16' is unknown"):
        export_model(config, checkpoint, tmp_path / "out", mixed_precision="float16")
