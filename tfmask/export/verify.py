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
# A bfloat16 graph's masks: a box that bfloat16 rounding moves (within TOLERANCE) resamples
# its mask from other features, which moves the mask's edge. So each detection's mean
# |difference| over its mask probabilities is held to this, not the largest. Measured on the
# demo's model after 30 steps on the sample: one box's edge moved by 0.006 (6% of its
# height), its mask's mean difference 0.047, the largest 0.37.
MASK_MEAN_TOLERANCE = {"float32": None, "bfloat16": 0.1}
# Detections per check image (a share, rounded down) that may have no partner on the other
# side (compare_outputs' unpaired_share) where rounding differs: near-tied proposals and
# detections go either way. A converted model's (tfmask.export.convert.UNPAIRED_SHARE) and
# a bfloat16 graph's: the demo's model after 30 steps on the sample, AMX Xeon, 2026-12-04,
# in-memory graph and reloaded SavedModel gave scores 0.3873 / 0.3908 to two boxes 0.69
# apart and swapped them in one export of two (20 detections).
NEAR_TIE_SHARE = 0.15
UNPAIRED_SHARE = {"float32": 0.0, "bfloat16": NEAR_TIE_SHARE}


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
    """[B, N] indices into ``got``'s detections that put them in ``expected``'s order
    (:func:`pair_detections`' first half). None without the outputs to match on."""
    pairs = pair_detections(expected, got, tolerance)
    return None if pairs is None else pairs[0]


def pair_detections(expected: Dict[str, np.ndarray], got: Dict[str, np.ndarray],
                    tolerance: float) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(order, paired): ``order`` [B, N] int indices into ``got``'s detections that put
    them in ``expected``'s order; ``paired`` [B, N] bool, False where a detection of either
    side has no partner (after reordering).

    The in-memory model runs op by op, the SavedModel as Grappler optimized its graph
    (fused kernels, reassociated sums): scores differ by ~1e-6, and two detections whose
    scores are closer than that come out of NMS in either order (a short fine-tune gives
    a hundred detections in a score range of ~0.3). Within each image's detections, each
    expected detection is paired with one of ``got`` of the same class whose box agrees
    within ``tolerance`` (an assignment with the most such pairs, the nearest in box and
    score first; the comparison then checks the pair's score and mask);
    a detection without a partner keeps a pairing that then fails the comparison, and
    slots only one side fills (unequal ``num_detections``) are unpaired. Padding stays in
    place, paired. None without the outputs to match on.
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
    counts_a, counts_b = (np.asarray(d["num_detections"]).reshape(-1) for d in (expected, got))
    order = np.tile(np.arange(slots), [batch, 1])
    paired = np.ones([batch, slots], bool)
    for b in range(min(batch, counts_a.size, counts_b.size)):
        n_a, n_b = (int(min(max(c[b], 0), slots)) for c in (counts_a, counts_b))
        n = max(n_a, n_b)
        paired[b, min(n_a, n_b):n] = False
        if n < 1:
            continue
        box_dist = np.abs(boxes_a[b, :n, None] - boxes_b[b, None, :n]).max(-1)
        dist = np.maximum(box_dist, np.abs(scores_a[b, :n, None] - scores_b[b, None, :n]))
        agree = (box_dist <= tolerance) & (classes_a[b, :n, None] == classes_b[b, None, :n])
        agree[n_a:, :] = False  # slots past a side's count are padding, no partner
        agree[:, n_b:] = False
        # 1 per disagreeing pair outweighs the distances (< 1/2 in all): most pairs, nearest.
        cost = (~agree).astype(np.float64) + np.minimum(dist, 1.0) / (2 * n)
        rows, cols = linear_sum_assignment(cost)
        order[b, rows] = cols
        paired[b, rows] = agree[rows, cols]
    return order, paired


def compare_outputs(expected: Dict[str, tf.Tensor], got: Dict[str, tf.Tensor],
                    tolerance: float = _BOX_TOLERANCE,
                    names: Tuple[str, str] = ("the in-memory model", "the reloaded SavedModel"),
                    unpaired_share: float = 0.0,
                    mask_mean_tolerance: Optional[float] = None) -> Dict[str, float]:
    """Max |got - expected| per output; raises on one out of tolerance.

    Detections are compared as sets: ``got``'s are first put in ``expected``'s order
    (:func:`pair_detections`), so a swap of near-tied scores passes while a detection,
    box, score, class or mask that differs still fails. ``names``: what ``expected`` and
    ``got`` come from, for the error message.

    ``unpaired_share`` > 0 (another runtime's kernels: :mod:`tfmask.export.convert`) lets
    up to that share of an image's detections (rounded down) have no partner on the other
    side; they are left out of the differences and counted in the result's
    ``"unpaired_detections"`` (the most in one image). Every paired detection must still
    agree. Why: the first stage picks its proposals by top-k and NMS, and where two
    anchors' objectness (or an IoU and the NMS threshold) tie within float32 rounding, each
    runtime's rounding picks its own; an untrained model's near-uniform objectness makes
    such ties common, and one proposal swapped replaces up to one detection per class.
    A conversion that is wrong shows in every detection, not a few.

    ``mask_mean_tolerance`` (a bfloat16 graph: ``MASK_MEAN_TOLERANCE``): each detection's
    ``detection_masks`` are held to a mean |difference| within it instead of the largest
    within ``max(tolerance, 1e-3)``.
    """
    want_name, got_name = names
    expected = {k: np.asarray(v) for k, v in expected.items()}
    got = {k: np.asarray(v) for k, v in got.items()}
    pairs = pair_detections(expected, got, tolerance)
    order, skip, unpaired = None, None, 0
    if pairs is not None:
        order, paired = pairs
        if unpaired_share > 0:
            counts = np.maximum(*(np.asarray(d["num_detections"]).reshape(-1)
                                  for d in (expected, got)))
            missing = (~paired).sum(1)
            allowed = np.floor(unpaired_share * counts[:missing.size])
            if np.all(missing <= allowed):
                skip, unpaired = ~paired, int(missing.max(initial=0))
    diffs: Dict[str, float] = {}
    for name, want in expected.items():
        if name not in got:
            raise ExportVerificationError(f"{got_name} has no output '{name}'")
        a, b = np.asarray(want, np.float64), np.asarray(got[name], np.float64)
        if a.shape != b.shape:
            raise ExportVerificationError(f"output '{name}' has shape {b.shape} in {got_name}, "
                                          f"{a.shape} in {want_name}")
        per_detection = order is not None and name in _PER_DETECTION \
            and b.shape[:2] == order.shape
        if per_detection:
            b = np.take_along_axis(b, order.reshape(order.shape + (1,) * (b.ndim - 2)), axis=1)
        diff = np.abs(a - b)
        if skip is not None and per_detection:
            diff = diff[~skip]  # the unpaired detections' slots are left out
        elif skip is not None and name == "num_detections":
            diff = np.zeros_like(diff)  # within the unpaired allowance
        diffs[name] = float(diff.max()) if diff.size else 0.0
        if name in ("detection_classes", "num_detections"):
            bad = diffs[name] != 0
        elif name == "detection_masks_reframed":  # a probability at 0.5 may flip
            bad = diff.size and diff.mean() > 1e-3
        elif name == "detection_masks" and mask_mean_tolerance is not None and diff.ndim > 2:
            per_detection_mean = diff.reshape(diff.shape[:-2] + (-1,)).mean(-1)
            bad = bool((per_detection_mean > mask_mean_tolerance).any())
        elif name == "detection_masks":
            # Probabilities, thresholded at 0.5: a steep mask head turns the graph's float32
            # rounding (ResNet-50 features: ~1e-5 relative) into ~1e-4 here.
            bad = diffs[name] > max(tolerance, 1e-3)
        else:
            bad = diffs[name] > tolerance
        if bad:
            mean = (f" (a detection's mean {per_detection_mean.max():.3g})"
                    if name == "detection_masks" and mask_mean_tolerance is not None
                    and diff.ndim > 2 else "")
            raise ExportVerificationError(
                f"output '{name}' of {got_name} differs from {want_name} by up to "
                f"{diffs[name]:.3g}{mean}")
    if skip is not None:
        diffs["unpaired_detections"] = float(unpaired)
    return diffs


def verify_export(saved_model_dir: PathLike, model, prep: Preprocessing, input_type: str,
                  full_image_masks: bool, min_score: float = 0.0,
                  tolerance: float = _BOX_TOLERANCE,
                  mask_mean_tolerance: Optional[float] = None,
                  unpaired_share: float = 0.0) -> Tuple[Dict[str, float], float]:
    """Reloads the SavedModel and compares it with ``model`` on one image.

    Detections are matched as sets (:func:`compare_outputs`), each output within ``tolerance``
    (masks: ``mask_mean_tolerance``, when given); up to ``unpaired_share`` of the
    detections may have no partner (their count is then the result's
    ``"unpaired_detections"``). ``input_type``, ``full_image_masks`` and ``min_score``
    are the export's.

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
    return compare_outputs(expected, got, tolerance, mask_mean_tolerance=mask_mean_tolerance,
                           unpaired_share=unpaired_share), reload_s
