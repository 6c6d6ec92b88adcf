"""The eval action: metrics kept, a line printed, predictions drawn for TensorBoard."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfmask.training.eval_action import EvalAction, draw_predictions


def _outputs(score=0.9):
    # One 32x48 detection at rows 8..40, cols 16..64 of a 64x96 frame; its box-relative
    # mask covers the box's left half only.
    mask = np.zeros((1, 1, 28, 28), np.float32)
    mask[0, 0, :, :14] = 1.0
    return {"detection_boxes": np.array([[[8.0, 16.0, 40.0, 64.0]]], np.float32),
            "detection_scores": np.array([[score]], np.float32),
            "detection_classes": np.array([[2]], np.int32),
            "num_detections": np.array([1], np.int32),
            "detection_masks": mask}


def _gray_normalized(shape):
    from official.vision.ops.preprocess_ops import MEAN_RGB, STDDEV_RGB

    return (np.full(shape, 128.0) - np.asarray(MEAN_RGB)) / np.asarray(STDDEV_RGB)


def test_predictions_are_drawn_where_the_model_put_them():
    images = _gray_normalized((1, 64, 96, 3))
    picture, = draw_predictions(images, _outputs(), {2: "cup"})
    assert picture.shape == (64, 96, 3) and picture.dtype == np.uint8
    changed = np.any(picture != 128, axis=-1)
    inside = changed[12:36, 20:38]   # the mask: left half of the box, away from the outline
    right = changed[28:37, 44:60]    # the right half holds no mask (the tag is above)
    assert inside.mean() > 0.95 and right.mean() < 0.05
    assert not changed[50:, :].any() and not changed[:, 70:].any()
    # Below the score threshold nothing is drawn.
    faint, = draw_predictions(images, _outputs(score=0.2), {2: "cup"})
    assert not np.any(faint != 128)


def test_eval_action_keeps_metrics_and_writes_images(tmp_path):
    step = tf.Variable(12, dtype=tf.int64)
    lines = []
    action = EvalAction(step, say=lines.append,
                        predict=lambda: (_gray_normalized((2, 64, 96, 3)),
                                         {k: np.concatenate([v, v]) for k, v in
                                          _outputs().items()}),
                        class_names={2: "cup"}, summary_dir=str(tmp_path), max_images=2)
    action({"AP": np.float32(0.25), "mask_AP50": 0.5, "image_info": np.zeros((2, 4, 2))})
    assert action.metrics["AP"] == 0.25 and "image_info" not in action.metrics
    assert lines == ["eval at step 12: AP 0.250  mask_AP50 0.500"]
    events = [e for f in tmp_path.iterdir() for e in tf.compat.v1.train.summary_iterator(str(f))]
    images = [v for e in events for v in e.summary.value if v.tag == "predictions"]
    assert images and all(e.step == 12 for e in events if e.summary.value)


def test_images_without_detections_are_drawn_unchanged(tmp_path):
    """A batch where one image has a detection and the other none, and one with none at all."""
    images = _gray_normalized((2, 64, 96, 3))
    one = _outputs()
    mixed = {k: np.concatenate([v, np.zeros_like(v)]) for k, v in one.items()}
    drawn, blank = draw_predictions(images, mixed, {2: "cup"})
    assert np.any(drawn != 128) and not np.any(blank != 128)
    nothing = {k: np.zeros_like(v) for k, v in mixed.items()}
    assert all(not np.any(p != 128) for p in draw_predictions(images, nothing, {2: "cup"}))
    step = tf.Variable(3, dtype=tf.int64)
    action = EvalAction(step, say=lambda line: None, predict=lambda: (images, nothing),
                        class_names={2: "cup"}, summary_dir=str(tmp_path), max_images=2)
    action({"AP": 0.0})
    events = [e for f in tmp_path.iterdir() for e in tf.compat.v1.train.summary_iterator(str(f))]
    assert [v for e in events for v in e.summary.value if v.tag == "predictions"]
