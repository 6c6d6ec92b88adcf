"""A model that detects nothing: export (every input type, with and without full-image
masks), the SavedModel, Predictor, ``tfmask infer`` and ``tfmask eval --model`` all work,
at batch 1 and in batches where some images keep detections and others none.

The model is freshly initialized (random weights: its softmax scores stay far below
1.0) and ``--min_score 1.0`` drops every detection; the oneDNN test runs the export in a
process with ``TF_ENABLE_ONEDNN_OPTS=1``, where a Conv2D on an empty batch breaks the
eager verification of the export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import export_testlib as lib
from tfmask.cli import main
from tfmask.export import exporter as export, serving

ROOT = lib.ROOT


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """(pipeline.config, checkpoint dir, Preprocessing, model) of a never-trained model."""
    from tfmask.modeling.untrained import save_untrained

    config = lib.dataset(tmp_path_factory) / "pipeline.config"
    ckpt_dir = tmp_path_factory.mktemp("fresh_model")
    prep, model = save_untrained(config, ckpt_dir, seed=3)
    return config, ckpt_dir, prep, model


def _numpy(out):
    return {k: v.numpy() for k, v in out.items()}


def _signature_input(input_type, batch):
    if input_type == "image_tensor":
        return tf.constant(batch)
    if input_type == "float_image_tensor":
        return tf.constant(batch.astype(np.float32))
    return tf.concat([export.verification_input(input_type, im) for im in batch], axis=0)


def _assert_empty(out, batch, full_image_masks, n):
    b = len(batch)
    assert out["num_detections"].tolist() == [0.0] * b
    assert out["detection_boxes"].shape == (b, n, 4)
    assert out["detection_scores"].shape == out["detection_classes"].shape == (b, n)
    assert out["detection_masks"].shape[:2] == (b, n)
    if full_image_masks:
        assert out["detection_masks_reframed"].shape == (b, n, *batch.shape[1:3])
    else:
        assert "detection_masks_reframed" not in out
    for name, value in out.items():
        assert not value.any(), f"{name} is not all padding"


@pytest.mark.parametrize("full_image_masks", [False, True])
@pytest.mark.parametrize("input_type", serving.INPUT_TYPES)
def test_eager_detect_with_no_survivor_keeps_the_contract(fresh, input_type, full_image_masks):
    _, _, prep, model = fresh
    n = model.detection_generator.get_config()["max_num_detections"]
    image = export.verification_image()
    for batch in (image[None], np.stack([image, image[::-1]])):
        out = _numpy(serving.detect(model, prep, _signature_input(input_type, batch),
                                    input_type, full_image_masks, min_score=1.0))
        _assert_empty(out, batch, full_image_masks, n)


def _mixed_threshold(model, prep, images):
    """A min_score under which images[0] keeps detections and images[1] none."""
    best = []
    for image in images:
        out = _numpy(serving.detect(model, prep, tf.constant(image[None])))
        best.append(float(out["detection_scores"][0, :int(out["num_detections"][0])].max()))
    assert abs(best[0] - best[1]) > 1e-4, best
    if best[0] < best[1]:
        images = images[::-1]
        best = best[::-1]
    return (best[0] + best[1]) / 2, np.stack(images)


def test_a_batch_mixing_images_with_and_without_detections(fresh):
    _, _, prep, model = fresh
    image = export.verification_image()
    threshold, batch = _mixed_threshold(model, prep, [image, np.full_like(image, 90)])
    eager = _numpy(serving.detect(model, prep, tf.constant(batch), full_image_masks=True,
                                  min_score=threshold))
    module = serving.DetectionServing(model, prep, "image_tensor", True, min_score=threshold)
    traced = _numpy(module.serve(tf.constant(batch)))
    for out in (eager, traced):
        counts = out["num_detections"].astype(int).tolist()
        assert counts[0] > 0 and counts[1] == 0, counts
        k = counts[0]
        assert (out["detection_scores"][0, :k] >= threshold).all()
        assert out["detection_masks"][0, :k].any()
        for name in ("detection_boxes", "detection_scores", "detection_masks",
                     "detection_masks_reframed"):
            assert not out[name][1].any(), f"{name} of the image without detections"
            assert not out[name][0, k:].any(), f"{name} past num_detections"
    for name in eager:
        np.testing.assert_allclose(eager[name], traced[name], atol=1e-4, err_msg=name)


@pytest.fixture(scope="module")
def empty_export(fresh, tmp_path_factory):
    """``tfmask export --min_score 1.0 --full_image_masks`` of the fresh model."""
    config, ckpt_dir, _, _ = fresh
    out = tmp_path_factory.mktemp("empty_export") / "export"
    code = main(["export", "--pipeline_config_path", str(config), "--trained_checkpoint_dir",
                 str(ckpt_dir), "--output_directory", str(out), "--min_score", "1.0",
                 "--full_image_masks"])
    assert code == 0
    return out


def test_export_with_min_score_1_is_verified_and_serves_nothing(empty_export):
    loaded = tf.saved_model.load(str(empty_export / "saved_model"))
    assert loaded.min_score.numpy() == 1.0
    image = export.verification_image()
    batch = np.stack([image, image[:, ::-1]])
    out = _numpy(loaded.signatures["serving_default"](input_tensor=tf.constant(batch)))
    n = out["detection_scores"].shape[1]
    _assert_empty(out, batch, True, n)
    assert (empty_export / "tfmask-export.log").is_file()


def test_predictor_infer_and_eval_on_a_model_that_detects_nothing(
        empty_export, tmp_path, tmp_path_factory, capsys):
    from tfmask.inference.predictor import Predictor

    root = lib.dataset(tmp_path_factory)
    predictor = Predictor(empty_export, min_score=0.0)
    image = lib.synth_image(tmp_path_factory)
    det = predictor.predict(image)
    assert len(det) == 0 and det.masks.shape == (0, *image.shape[:2])
    assert det.boxes_xyxy_px.shape == (0, 4) and det.scores.shape == (0,)
    small = np.ascontiguousarray(image[:50, :70])
    assert [len(d) for d in predictor.predict_batch([image, small, image])] == [0, 0, 0]

    images = root / "data" / "test_images"
    code = main(["infer", "--model", str(empty_export), "--images", str(images), "--output",
                 str(tmp_path / "infer"), "--min-score", "0.0", "--batch-size", "2",
                 "--instance-masks", "--no-progress"])
    assert code == 0
    assert json.loads((tmp_path / "infer" / "detections.json").read_text()) == []
    for path in sorted(images.iterdir()):
        drawn = np.asarray(Image.open(tmp_path / "infer" / "overlays" / f"{path.stem}.png"))
        np.testing.assert_array_equal(drawn, np.asarray(Image.open(path).convert("RGB")))
    assert not (tmp_path / "infer" / "masks").exists() or not any(
        (tmp_path / "infer" / "masks").iterdir())

    capsys.readouterr()
    code = main(["eval", "--gt", str(root / "records" / "val-*"), "--model", str(empty_export),
                 "--output", str(tmp_path / "eval")])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["counts"]["detections"] == 0 and metrics["counts"]["ground_truth"] > 0
    for iou_type in ("bbox", "segm"):
        assert metrics[iou_type]["AP"] == 0.0 and metrics[iou_type]["AP50"] == 0.0


@pytest.mark.slow
def test_export_verification_under_onednn(fresh, tmp_path):
    """The reported crash: TF_ENABLE_ONEDNN_OPTS=1, nothing survives, eager verification."""
    config, ckpt_dir, _, _ = fresh
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="2")
    out = tmp_path / "export"
    proc = subprocess.run(
        [sys.executable, "-m", "tfmask", "export", "--pipeline_config_path", str(config),
         "--trained_checkpoint_dir", str(ckpt_dir), "--output_directory", str(out),
         "--min_score", "1.0"], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "verified: the reloaded SavedModel matches the model" in proc.stdout
    assert (out / "saved_model" / "saved_model.pb").is_file()
