"""``tfmask export --format onnx|openvino``: conversion, its check against the SavedModel,
``export.json``, and Predictor / ``tfmask infer`` / ``tfmask eval`` on converted exports.

The model is the tiny config with seeded random weights (:func:`export_testlib.untrained`):
its scores spread over (0, 1), so each image has all ``max_total_detections`` and the
comparisons see full outputs. Converting takes ~1.5 min (ONNX) and ~2-3 min (OpenVINO)
on 2 cores, so the OpenVINO and ``--min-score 1.0`` exports are in the slow set.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf

import export_testlib as lib
from tfmask.cli import main
from tfmask.errors import ConfigError, DataError
from tfmask.export import convert, exporter, formats
from tfmask.inference import runtimes


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    return lib.exported_as(tmp_path_factory, "onnx")


def _matched(a, b, box_px, unpaired_share=0.0):
    """(indices into a, the same detections' indices into b): pairs of one class whose
    boxes agree within ``box_px`` (near-tied scores may leave NMS in either order). At most
    ``unpaired_share`` of a's detections (rounded down) may lack a partner (see
    ``convert.UNPAIRED_SHARE``)."""
    from scipy.optimize import linear_sum_assignment

    dist = np.abs(a.boxes_xyxy_px[:, None] - b.boxes_xyxy_px[None]).max(-1)
    agree = (dist <= box_px) & (a.class_ids[:, None] == b.class_ids[None])
    rows, cols = linear_sum_assignment((~agree) + dist / (1 + dist.max(initial=0.0)))
    keep = agree[rows, cols]
    assert len(rows) - keep.sum() <= int(unpaired_share * len(a)), (len(rows), keep.sum())
    return rows[keep], cols[keep]


def _assert_same_detections(a, b, box_px=0.05, unpaired_share=0.0):
    assert abs(len(a) - len(b)) <= int(unpaired_share * len(a)) and len(a) > 0
    ia, ib = _matched(a, b, box_px, unpaired_share)
    np.testing.assert_allclose(b.boxes_xyxy_px[ib], a.boxes_xyxy_px[ia], atol=box_px)
    np.testing.assert_allclose(b.scores[ib], a.scores[ia], atol=1e-3)
    np.testing.assert_array_equal(b.class_ids[ib], a.class_ids[ia])
    # Random weights: mask probabilities sit near the 0.5 threshold, a few pixels may flip.
    assert np.mean(b.masks[ib] != a.masks[ia]) < 0.01


# --------------------------------------------------------------------------- the tf2onnx fix

def test_batched_gather_with_a_negative_axis_converts_and_runs(tmp_path):
    """Model Garden's mask head: tf.gather(logits, classes, axis=-1, batch_dims=2)."""
    import onnxruntime as ort
    import tf2onnx
    from tf2onnx import tf_loader

    @tf.function(input_signature=[tf.TensorSpec([None, 1, 4, 4, 3], tf.float32),
                                  tf.TensorSpec([None, 1], tf.int32)])
    def select(logits, classes):
        return tf.gather(logits, classes, axis=-1, batch_dims=2)

    fn = select.get_concrete_function()
    inputs, outputs = [t.name for t in fn.inputs], [t.name for t in fn.outputs]
    fixed = convert.nonnegative_gather_axes(tf_loader.from_function(fn, inputs, outputs))
    gathers = [n for n in fixed.node if n.op == "GatherV2"]
    axis_nodes = {n.name: n for n in fixed.node}
    assert [tf.make_ndarray(axis_nodes[g.input[2]].attr["value"].tensor) for g in gathers] \
        == [4]
    tf2onnx.convert.from_graph_def(fixed, input_names=inputs, output_names=outputs,
                                   output_path=str(tmp_path / "gather.onnx"))
    session = ort.InferenceSession(str(tmp_path / "gather.onnx"),
                                   providers=["CPUExecutionProvider"])
    logits = np.random.default_rng(0).random((5, 1, 4, 4, 3), np.float32)
    classes = np.int32([[0], [2], [1], [2], [0]])
    got = session.run(None, dict(zip([i.name for i in session.get_inputs()],
                                     [logits, classes])))[0]
    np.testing.assert_array_equal(got, select(logits, classes).numpy())
    np.testing.assert_array_equal(got[1, 0], logits[1, 0, :, :, 2])
    if tf2onnx.__version__ == "1.17.0":  # the pinned version: the cause, unfixed
        tf2onnx.convert.from_graph_def(tf_loader.from_function(fn, inputs, outputs),
                                       input_names=inputs, output_names=outputs,
                                       output_path=str(tmp_path / "unfixed.onnx"))
        with pytest.raises(Exception, match="perm for Transpose has repeated value"):
            ort.InferenceSession(str(tmp_path / "unfixed.onnx"),
                                 providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------- ONNX export

def test_onnx_export_is_verified_and_records_its_format(onnx_export):
    out, result = onnx_export
    info = json.loads((out / "export.json").read_text())
    assert info["format"] == "onnx" and info["model"] == "onnx/model.onnx"
    assert (out / "onnx" / "model.onnx").is_file()
    assert (out / "saved_model" / "saved_model.pb").is_file()
    assert info["outputs"] == result.outputs
    assert info["outputs"]["detection_boxes"] == "float32 [None, 20, 4]"
    assert result.model_path == str(out / "onnx" / "model.onnx")
    assert set(result.converted_max_abs_diff) == set(result.outputs)
    assert result.converted_max_abs_diff["detection_boxes"] <= convert.TOLERANCE["onnx"]
    assert result.converted_max_abs_diff["num_detections"] == 0.0
    assert info["max_abs_diff"] == result.converted_max_abs_diff
    assert not list(out.parent.glob(f".{out.name}*"))  # no temporary folders left


def test_onnx_runtime_returns_the_savedmodel_signature(onnx_export, tmp_path_factory):
    out, _ = onnx_export
    onnx_rt = runtimes.open_runtime(out)
    saved_rt = runtimes.open_runtime(out, fmt="savedmodel")
    assert (onnx_rt.format, saved_rt.format) == ("onnx", "savedmodel")
    assert onnx_rt.max_detections == saved_rt.max_detections == 20
    image = lib.synth_image(tmp_path_factory)
    batch = np.stack([image, image[::-1]])
    got, want = onnx_rt.run(batch), saved_rt.run(batch)
    assert {k: (v.dtype, v.shape) for k, v in got.items()} == \
        {k: (v.dtype, v.shape) for k, v in want.items()}
    assert want["num_detections"].tolist() == [20.0, 20.0]
    diffs = exporter.compare_outputs(want, got, convert.TOLERANCE["onnx"])
    assert diffs["detection_classes"] == 0.0


def test_predictor_infer_and_eval_run_the_onnx_export(onnx_export, tmp_path, tmp_path_factory,
                                                       capsys):
    from tfmask.inference.predictor import Predictor

    out, _ = onnx_export
    root = lib.dataset(tmp_path_factory)
    image = lib.synth_image(tmp_path_factory)
    on_onnx = Predictor(out, min_score=0.0)
    assert on_onnx.runtime.format == "onnx"
    _assert_same_detections(Predictor(out, min_score=0.0, runtime="savedmodel").predict(image),
                            on_onnx.predict(image))
    # The same folder without export.json is a SavedModel export (as before the file).
    plain = tmp_path / "plain"
    shutil.copytree(out, plain, ignore=shutil.ignore_patterns("onnx", "export.json"))
    assert Predictor(plain).runtime.format == "savedmodel"

    results = {}
    for name, folder in (("onnx", out), ("savedmodel", plain)):
        assert main(["infer", "--model", str(folder), "--images",
                     str(root / "data" / "test_images"), "--output", str(tmp_path / name),
                     "--min-score", "0.0", "--no-progress"]) == 0
        results[name] = json.loads((tmp_path / name / "detections.json").read_text())
        assert main(["eval", "--gt", str(root / "records" / "val-*"), "--model", str(folder),
                     "--output", str(tmp_path / f"eval_{name}")]) == 0, capsys.readouterr().err
    assert len(results["onnx"]) == len(results["savedmodel"]) == 3 * 20  # 3 test images
    for r in results["onnx"]:  # each has its twin: same image, class, box and score
        assert any(t["file_name"] == r["file_name"] and t["category_id"] == r["category_id"]
                   and np.abs(np.subtract(t["bbox"], r["bbox"])).max() < 0.05
                   and abs(t["score"] - r["score"]) < 1e-3 for t in results["savedmodel"])
    metrics = [json.loads((tmp_path / f"eval_{n}" / "metrics.json").read_text())
               for n in ("onnx", "savedmodel")]
    assert metrics[0]["counts"] == metrics[1]["counts"]
    for iou_type in ("bbox", "segm"):
        assert metrics[0][iou_type]["AP"] == pytest.approx(metrics[1][iou_type]["AP"], abs=0.01)


def test_a_converted_model_that_disagrees_fails_the_check(onnx_export, monkeypatch):
    out, _ = onnx_export
    info = formats.read_info(out)
    run = runtimes.OnnxRuntime._run

    def nudged(self, batch):
        result = run(self, batch)
        result["detection_scores"] = result["detection_scores"] + 1e-3
        return result

    monkeypatch.setattr(runtimes.OnnxRuntime, "_run", nudged)
    with pytest.raises(exporter.ExportVerificationError,
                       match="'detection_scores' of the ONNX model differs from the SavedModel"):
        convert.verify_converted(out, info)


# --------------------------------------------------------------------------- errors

def test_a_missing_runtime_package_is_one_error_naming_the_extra(onnx_export, tmp_path,
                                                                 monkeypatch, capsys):
    from tfmask.inference.predictor import Predictor

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    code = main(["export", "--pipeline-config-path", str(onnx_export[0] / "pipeline.config"),
                 "--trained-checkpoint-dir", str(onnx_export[0]),
                 "--export-dir", str(tmp_path / "out"), "--format", "onnx"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [
        "error: format 'onnx' needs the onnxruntime package, which is not installed: "
        "pip install 'tfmask[runtimes]'"]
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=r"pip install 'tfmask\[runtimes\]'"):
        Predictor(onnx_export[0])


@pytest.mark.parametrize("args, message", [
    (["--input-type", "encoded_image_string_tensor"],
     "--format 'onnx' takes pixels: --input-type must be one of image_tensor, "
     "float_image_tensor"),
    (["--mixed-precision", "bfloat16"], "bfloat16"),
])
def test_converted_formats_refuse_string_inputs_and_bfloat16(args, message, onnx_export,
                                                              tmp_path, capsys):
    code = main(["export", "--pipeline-config-path", str(onnx_export[0] / "pipeline.config"),
                 "--trained-checkpoint-dir", str(onnx_export[0]),
                 "--export-dir", str(tmp_path / "out"), "--format", "onnx", *args])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_openvino_refuses_full_image_masks_before_any_work(onnx_export, tmp_path, capsys):
    """OpenVINO's converter needs the paste's CropAndResize size constant; the input
    image's size is not: one error naming both flags, not the converter's traceback."""
    code = main(["export", "--pipeline-config-path", str(onnx_export[0] / "pipeline.config"),
                 "--trained-checkpoint-dir", str(onnx_export[0]),
                 "--export-dir", str(tmp_path / "out"), "--format", "openvino",
                 "--full-image-masks"])
    err = capsys.readouterr().err
    assert code == 1
    assert "--format 'openvino' cannot convert --full-image-masks" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_export_json_errors_and_formats_an_export_lacks(onnx_export, tmp_path):
    with pytest.raises(ConfigError, match="is a onnx export; it holds no openvino model"):
        runtimes.open_runtime(onnx_export[0], fmt="openvino")
    with pytest.raises(ConfigError, match="fmt 'tflite' is unknown; valid: savedmodel, onnx"):
        runtimes.open_runtime(onnx_export[0], fmt="tflite")
    (tmp_path / "export.json").write_text("{not json")
    with pytest.raises(DataError, match="export.json: is not an export description"):
        formats.read_info(tmp_path)
    (tmp_path / "export.json").write_text('{"format": "tflite"}')
    with pytest.raises(DataError, match="format 'tflite' is unknown to this tfmask"):
        formats.read_info(tmp_path)
    with pytest.raises(DataError, match="no such export folder"):
        runtimes.open_runtime(tmp_path / "missing")


# --------------------------------------------------------------------------- slow set

@pytest.mark.slow
def test_openvino_export_is_verified_and_predicts_as_the_savedmodel(tmp_path_factory):
    from tfmask.inference.predictor import Predictor

    out, result = lib.exported_as(tmp_path_factory, "openvino")
    info = formats.read_info(out)
    assert (info.format, info.model) == ("openvino", "openvino/model.xml")
    assert (out / "openvino" / "model.bin").is_file()
    assert result.converted_max_abs_diff["detection_boxes"] <= convert.TOLERANCE["openvino"]
    image = lib.synth_image(tmp_path_factory)
    batch = np.stack([image, image[:, ::-1]])
    got = runtimes.open_runtime(out).run(batch)
    want = runtimes.open_runtime(out, fmt="savedmodel").run(batch)
    assert {k: (v.dtype, v.shape) for k, v in got.items()} == \
        {k: (v.dtype, v.shape) for k, v in want.items()}
    exporter.compare_outputs(want, got, convert.TOLERANCE["openvino"],
                             unpaired_share=convert.UNPAIRED_SHARE)
    assert info.unpaired_detections == result.converted_unpaired <= 3  # of 20
    _assert_same_detections(Predictor(out, min_score=0.0, runtime="savedmodel").predict(image),
                            Predictor(out, min_score=0.0).predict(image),
                            unpaired_share=convert.UNPAIRED_SHARE)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_an_export_that_keeps_no_detection_runs_in_every_runtime(fmt, tmp_path_factory):
    from tfmask.inference.predictor import Predictor

    out, _ = lib.exported_as(tmp_path_factory, fmt, 1.0)
    image = lib.synth_image(tmp_path_factory)
    batch = np.stack([image, image[::-1]])
    got = runtimes.open_runtime(out).run(batch)
    assert got["num_detections"].tolist() == [0.0, 0.0]
    assert got["detection_boxes"].shape == (2, 20, 4) and not got["detection_boxes"].any()
    assert got["detection_masks"].shape == (2, 20, 28, 28)
    det = Predictor(out, min_score=0.0).predict(image)
    assert len(det) == 0 and det.masks.shape == (0, *image.shape[:2])


@pytest.mark.slow
def test_a_failed_conversion_check_keeps_the_previous_export(onnx_export, tmp_path,
                                                             monkeypatch, capsys):
    out = tmp_path / "export"
    shutil.copytree(onnx_export[0], out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    run = runtimes.OnnxRuntime._run
    monkeypatch.setattr(runtimes.OnnxRuntime, "_run", lambda self, batch: {
        **run(self, batch), "num_detections": np.zeros(len(batch), np.float32)})
    code = main(["export", "--pipeline-config-path", str(out / "pipeline.config"),
                 "--trained-checkpoint-dir", str(out), "--export-dir", str(out),
                 "--format", "onnx"])
    assert code == 1
    assert "'num_detections' of the ONNX model differs from the SavedModel" in \
        capsys.readouterr().err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name != "export"]


@pytest.mark.parametrize("fmt,batched", [("savedmodel", True), ("onnx", False),
                                         ("openvino", False)])
def test_converted_exports_get_the_padded_proposal_nms(fmt, batched):
    """OpenVINO cannot convert CombinedNonMaxSuppression and tf2onnx's conversion
    disagreed with TensorFlow: their exports swap Model Garden's padded NMS in for the
    proposals, and say so."""
    from official.core import exp_factory

    from tfmask.export.exporter import _serving_params

    params = exp_factory.get_exp_config("maskrcnn_resnetfpn_coco")
    params.task.model.roi_generator.use_batched_nms = True
    said = []
    out = _serving_params(params, said.append, fmt)
    assert out.task.model.roi_generator.use_batched_nms is batched
    assert any("padded NMS" in line for line in said) is not batched

