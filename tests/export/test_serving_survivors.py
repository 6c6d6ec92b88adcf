"""The mask head on surviving detections only: same masks as ``model.call``, ``--min_score``,
no survivors, batches whose images keep different numbers of detections."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import export_testlib as lib
from tfmask.export import exporter as export, serving
from tfmask.cli import main

KEYS = ("detection_boxes", "detection_scores", "detection_classes", "detection_masks")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(Preprocessing, the trained model restored independently of any export)."""
    from tfmask.config.translate import translate

    params = translate(lib.dataset(tmp_path_factory) / "pipeline.config").params
    ckpt = tf.train.latest_checkpoint(str(lib.trained(tmp_path_factory)))
    return (serving.Preprocessing.from_model_config(params.task.model),
            export.restore_model(params, ckpt))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return np.stack([lib.synth_image(tmp_path_factory, f"image{i:04d}.png") for i in (2, 5, 7)])


def _numpy(out):
    return {k: v.numpy() for k, v in out.items()}


def _full_computation(model, prep, batch):
    """Model Garden's ``model.call`` (mask head on all N boxes), mapped to the contract."""
    h, w = prep.padded_hw
    padded, info = tf.map_fn(prep.image, tf.constant(batch), fn_output_signature=(
        tf.TensorSpec([h, w, 3], tf.float32), tf.TensorSpec([4, 2], tf.float32)))
    anchors = {level: tf.tile(boxes[None], [len(batch), 1, 1, 1])
               for level, boxes in prep.anchor_boxes().items()}
    out = model.call(padded, image_shape=info[:, 1, :], anchor_boxes=anchors, training=False)
    return _numpy(serving.map_outputs(out, info))


def _kept(full, b, min_score):
    """The entries of image ``b`` of ``full`` that survive ``min_score``, in order."""
    n = int(full["num_detections"][b])
    keep = np.nonzero(full["detection_scores"][b, :n] >= min_score)[0]
    return {k: full[k][b, keep] for k in KEYS}


def _assert_image(got, b, want, atol=1e-5):
    k = len(want["detection_scores"])
    assert int(got["num_detections"][b]) == k
    for name in KEYS:
        np.testing.assert_allclose(got[name][b, :k], want[name], atol=atol, err_msg=name)
        assert not got[name][b, k:].any(), f"{name} past num_detections is not zero padding"


@pytest.mark.parametrize("quantile", [None, 0.5])
def test_survivor_masks_equal_the_full_computation(model, images, quantile):
    prep, mdl = model
    full = _full_computation(mdl, prep, images)
    scores = np.concatenate([full["detection_scores"][b, :int(n)]
                             for b, n in enumerate(full["num_detections"])])
    min_score = 0.0 if quantile is None else float(np.quantile(scores, quantile))
    got = _numpy(serving.detect(mdl, prep, tf.constant(images), min_score=min_score))
    assert got["detection_masks"].shape == full["detection_masks"].shape
    for b in range(len(images)):
        want = _kept(full, b, min_score)
        assert quantile is not None or len(want["detection_scores"]) > 0
        _assert_image(got, b, want)
    if quantile is not None:
        assert got["num_detections"].sum() < full["num_detections"].sum()


def test_no_survivors_gives_zero_detections_and_the_contract_shapes(model, images):
    prep, mdl = model
    module = serving.DetectionServing(mdl, prep, "image_tensor", full_image_masks=True,
                                      min_score=1.1)
    out = _numpy(module.serve(tf.constant(images[:2])))  # traced, as in the SavedModel
    n = mdl.detection_generator.get_config()["max_num_detections"]
    h, w = images.shape[1:3]
    assert out["num_detections"].tolist() == [0.0, 0.0]
    assert out["detection_boxes"].shape == (2, n, 4)
    assert out["detection_scores"].shape == out["detection_classes"].shape == (2, n)
    assert out["detection_masks"].shape[:2] == (2, n)
    assert out["detection_masks_reframed"].shape == (2, n, h, w)
    for value in out.values():
        assert not value.any()


def test_a_batch_with_different_survivor_counts_matches_each_image_alone(model, images):
    prep, mdl = model
    a, b = images[0], images[2]
    alone = [_numpy(serving.detect(mdl, prep, tf.constant(im[None]))) for im in (a, b)]
    scores = [o["detection_scores"][0, :int(o["num_detections"][0])] for o in alone]
    # The lowest threshold at which the two images keep different numbers of detections,
    # midway between two distinct scores: a batch's scores differ from a single image's by
    # float rounding (~1e-7), so a threshold equal to a score could keep it in one, not the other.
    distinct = np.unique(np.concatenate(scores))
    midpoints = [(lo + hi) / 2 for lo, hi in zip(distinct[:-1], distinct[1:]) if hi - lo > 1e-4]
    min_score = next(t for t in midpoints if (scores[0] >= t).sum() != (scores[1] >= t).sum())
    both = _numpy(serving.detect(mdl, prep, tf.constant(np.stack([a, b])), min_score=min_score))
    counts = both["num_detections"].astype(int).tolist()
    assert counts[0] != counts[1] and max(counts) > 0
    for i, single in enumerate(alone):
        _assert_image(both, i, _kept(single, 0, min_score), atol=1e-4)


@pytest.mark.slow  # a second CLI export (~2 min); test_empty_results covers --min_score
def test_min_score_flag_end_to_end(tmp_path, tmp_path_factory, images, capsys):
    default_dir, _ = lib.exported(tmp_path_factory, "image_tensor", False)
    default = tf.saved_model.load(str(default_dir / "saved_model")).signatures["serving_default"]
    want = _numpy(default(input_tensor=tf.constant(images)))
    scores = np.concatenate([want["detection_scores"][b, :int(n)]
                             for b, n in enumerate(want["num_detections"])])
    min_score = float(np.round(np.median(scores), 4))
    out_dir = tmp_path / "export"
    code = main(["export", "--pipeline_config_path",
                 str(lib.dataset(tmp_path_factory) / "pipeline.config"),
                 "--trained_checkpoint_dir", str(lib.trained(tmp_path_factory)),
                 "--output_directory", str(out_dir), "--min_score", str(min_score)])
    assert code == 0
    assert f"detections scoring below {min_score:g} are dropped" in capsys.readouterr().out
    loaded = tf.saved_model.load(str(out_dir / "saved_model"))
    assert loaded.min_score.numpy() == pytest.approx(min_score)
    got = _numpy(loaded.signatures["serving_default"](input_tensor=tf.constant(images)))
    assert got["detection_masks"].shape == want["detection_masks"].shape
    assert 0 < got["num_detections"].sum() < want["num_detections"].sum()
    for b in range(len(images)):
        _assert_image(got, b, _kept(want, b, min_score), atol=1e-4)
