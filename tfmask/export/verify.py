"""Checking an export against its model: the check images, outputs compared as sets.

``tfmask export`` reloads the SavedModel it wrote and runs it and the in-memory
model on :func:`verification_image` (:func:`verify_export`); a converted model
(ONNX, OpenVINO) is checked against the SavedModel the same way
(:mod:`tfmask.export.convert`). :func:`compare_outputs` pairs detections as sets,
so two near-tied scores that leave NMS in either order pass, while a detection,
box, score, class or mask that differs fails with the output named::

    from tfmask.export.verify import compare_outputs
    diffs = compare_outputs(expected, got, tolerance=1e-4)   # {output name: max |diff|}

Boxes are normalized ``[ymin, xmin, ymax, xmax]`` (the signature's), masks are
probabilities in [0, 1].
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfmask.data.records.feature_keys import IMAGE_ENCODED
from tfmask.errors import PathLike, TfmaskError
from tfmask.export.serving import INPUT_NAME, Preprocessing, detect

SIGNATURE = "serving_default"
VERIFY_SIZE_HW = (100, 150)  # non-square, so a swapped height/width shows up
_BOX_TOLERANCE = 1e-4  # normalized boxes, scores and masks, reloaded vs in memory
# A bfloat16 graph (8-bit mantissa): the reloaded graph's fused kernels round differently.
TOLERANCE = {"float32": _BOX_TOLERANCE, "bfloat16": 2e-2}


class ExportVerificationError(TfmaskError):
    """The reloaded SavedModel disagrees with the in-memory model."""


def verification_input(input_type: str, image: np.ndarray) -> tf.Tensor:
    """The signature input holding ``image`` ([H, W, 3] uint8) for ``input_type``."""
    if input_type == "image_tensor":
        return tf.constant(image[None])
    if input_type == "float_image_tensor":
        return tf.constant(image[None].astype(np.float32))
    png = tf.io.encode_png(image).numpy()
    if input_type == "encoded_image_string_tensor":
        return tf.constant([png])
    example = tf.train.Example(features=tf.train.Features(feature={
        IMAGE_ENCODED: tf.train.Feature(bytes_list=tf.train.BytesList(value=[png]))}))
    return tf.constant([example.SerializeToString()])


def verification_image(size_hw: Tuple[int, int] = VERIFY_SIZE_HW) -> np.ndarray:
    """A deterministic [H, W, 3] uint8 picture: gradients with a few flat shapes."""
    h, w = size_hw
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([255 * xx / w, 255 * yy / h, 128 + 0 * xx], -1)
    rng = np.random.default_rng(0)
    for _ in range(4):
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        image[y0:y0 + h // 3, x0:x0 + w // 4] = rng.integers(0, 256, 3)
    return image.astype(np.uint8)


# Outputs with one entry per detection ([B, N, ...]), reordered by detection_order.
_PER_DETECTION = ("detection_boxes", "detection_scores", "detection_classes",
                  "detection_masks", "detection_masks_reframed")
_MATCH_KEYS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def detection_order(expected: Dict[str, np.ndarray], got: Dict[str, np.ndarray],
                     tolerance: float) -> Optional[np.ndarray]:
    """[B, N] indices into ``got``'s detections that put them in ``expected``'s order.

    The in-memory model runs op by op, the SavedModel as Grappler optimized its graph
    (fused kernels, reassociated sums): scores differ by ~1e-6, and two detections whose
    scores are closer than that come out of NMS in either order (a short fine-tune gives
    a hundred detections in a score range of ~0.3). Within each image's
    ``num_detections``, each expected detection is paired with one of ``got`` of the same
    class whose box and score agree within ``tolerance`` (an assignment with the most such
    pairs, the nearest first); a detection without a partner keeps a pairing that then
    fails the comparison. Padding stays in place. None without the outputs to match on.
    """
    from scipy.optimize import linear_sum_assignment

    if not all(k in expected and k in got for k in _MATCH_KEYS):
        return None
    boxes_a, boxes_b = (np.asarray(d["detection_boxes"], np.float64) for d in (expected, got))
    if boxes_a.shape != boxes_b.shape or boxes_a.ndim != 3:
        return None  # the shape check names it
    batch, slots = boxes_a.shape[:2]
    scores_a, scores_b = (np.asarray(d["detection_scores"], np.float64) for d in (expected, got))
    classes_a, classes_b = (np.asarray(d["detection_classes"]) for d in (expected, got))
    counts = np.minimum(np.asarray(expected["num_detections"]).reshape(-1),
                        np.asarray(got["num_detections"]).reshape(-1))  # unequal: fails anyway
    order = np.tile(np.arange(slots), [batch, 1])
    for b in range(min(batch, counts.size)):
        n = int(min(max(counts[b], 0), slots))
        if n < 2:
            continue
        dist = np.maximum(np.abs(boxes_a[b, :n, None] - boxes_b[b, None, :n]).max(-1),
                          np.abs(scores_a[b, :n, None] - scores_b[b, None, :n]))
        agree = (dist <= tolerance) & (classes_a[b, :n, None] == classes_b[b, None, :n])
        # 1 per disagreeing pair outweighs the distances (< 1/2 in all): most pairs, nearest.
        cost = (~agree).astype(np.float64) + np.minimum(dist, 1.0) / (2 * n)
        rows, cols = linear_sum_assignment(cost)
        order[b, rows] = cols
    return order


def compare_outputs(expected: Dict[str, tf.Tensor], got: Dict[str, tf.Tensor],
             tolerance: float = _BOX_TOLERANCE,
             names: Tuple[str, str] = ("the in-memory model", "the reloaded SavedModel")
             ) -> Dict[str, float]:
    """Max |got - expected| per output; raises on one out of tolerance.

    Detections are compared as sets: ``got``'s are first put in ``expected``'s order
    (:func:`detection_order`), so a swap of near-tied scores passes while a detection,
    box, score, class or mask that differs still fails. ``names``: what ``expected`` and
    ``got`` come from, for the error message.
    """
    want_name, got_name = names
    expected = {k: np.asarray(v) for k, v in expected.items()}
    got = {k: np.asarray(v) for k, v in got.items()}
    order = detection_order(expected, got, tolerance)
    diffs: Dict[str, float] = {}
    for name, want in expected.items():
        if name not in got:
            raise ExportVerificationError(f"{got_name} has no output '{name}'")
        a, b = np.asarray(want, np.float64), np.asarray(got[name], np.float64)
        if a.shape != b.shape:
            raise ExportVerificationError(f"output '{name}' has shape {b.shape} in {got_name}, "
                                          f"{a.shape} in {want_name}")
        if order is not None and name in _PER_DETECTION and b.shape[:2] == order.shape:
            b = np.take_along_axis(b, order.reshape(order.shape + (1,) * (b.ndim - 2)), axis=1)
        diff = np.abs(a - b)
        diffs[name] = float(diff.max()) if diff.size else 0.0
        if name in ("detection_classes", "num_detections"):
            bad = diffs[name] != 0
        elif name == "detection_masks_reframed":  # a probability at 0.5 may flip
            bad = diff.size and diff.mean() > 1e-3
        elif name == "detection_masks":
            # Probabilities, thresholded at 0.5: a steep mask head turns the graph's float32
            # rounding (ResNet-50 features: ~1e-5 relative) into ~1e-4 here.
            bad = diffs[name] > max(tolerance, 1e-3)
        else:
            bad = diffs[name] > tolerance
        if bad:
            raise ExportVerificationError(
                f"output '{name}' of {got_name} differs from {want_name} by up to "
                f"{diffs[name]:.3g}")
    return diffs


def verify_export(saved_model_dir: PathLike, model, prep: Preprocessing, input_type: str,
                  full_image_masks: bool, min_score: float = 0.0,
                  tolerance: float = _BOX_TOLERANCE
                  ) -> Tuple[Dict[str, float], float]:
    """Reloads the SavedModel and compares it with ``model`` on one image.

    Detections are matched as sets (:func:`compare_outputs`), each output within ``tolerance``.
    ``input_type``, ``full_image_masks`` and ``min_score`` are the export's.

    Returns:
      (max abs difference per output, seconds ``tf.saved_model.load`` took).

    Raises:
      ExportVerificationError: an output is missing or differs (named).
    """
    image = verification_image()
    # As a graph, as the SavedModel runs: Grappler's fused kernels round alike on both sides
    # (eagerly, bfloat16 on AMX rounded op by op and picked other near-tied detections).
    in_graph = tf.function(lambda x: detect(model, prep, x, "image_tensor", full_image_masks,
                                            min_score))
    expected = in_graph(tf.constant(image[None]))
    start = time.perf_counter()
    loaded = tf.saved_model.load(str(saved_model_dir))
    reload_s = time.perf_counter() - start
    got = loaded.signatures[SIGNATURE](**{INPUT_NAME: verification_input(input_type, image)})
    return compare_outputs(expected, got, tolerance), reload_s
