"""Export a trained checkpoint as a SavedModel with the OD API's serving signature.

The library behind ``tfmask export``::

    tfmask export --pipeline-config-path configs/mask_rcnn_tiny_cpu.config \\
        --trained-checkpoint-dir runs/tiny --export-dir exported/tiny

writes ``OUT/saved_model/`` (signature ``serving_default``), ``OUT/checkpoint/ckpt-0``
(usable as ``fine_tune_checkpoint`` or ``--trained-checkpoint-dir``),
``OUT/pipeline.config`` (a copy) and ``OUT/label_map.pbtxt``. The folder is built
beside OUT and swapped in only after the reloaded SavedModel has been checked
against the in-memory model, so a failed export never replaces a good one.

The signature contract and the in-graph computation are in :mod:`tfmask.export.serving`.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfmask.atomic import atomic_dir, restore_aside_dir
from tfmask.errors import ConfigError, DataError, PathLike, TfmaskError
from tfmask.data.records.feature_keys import IMAGE_ENCODED
from tfmask.export.precision import check_export_precision, compute_policy
from tfmask.export.serving import (INPUT_NAME, INPUT_TYPES, DetectionServing,  # noqa: F401
                            Preprocessing, detect, input_spec)

SIGNATURE = "serving_default"
VERIFY_SIZE_HW = (100, 150)  # non-square, so a swapped height/width shows up
_DYNAMIC_BATCH_NMS = ("batched", "v2", "v3")
_BOX_TOLERANCE = 1e-4  # normalized boxes, scores and masks, reloaded vs in memory
# A bfloat16 graph (8-bit mantissa): the reloaded graph's fused kernels round differently.
TOLERANCE = {"float32": _BOX_TOLERANCE, "bfloat16": 2e-2}


class ExportVerificationError(TfmaskError):
    """The reloaded SavedModel disagrees with the in-memory model."""


@dataclass
class ExportResult:
    """What ``export_model`` wrote.

    Attributes:
      export_dir / saved_model_dir / checkpoint_path / pipeline_config /
        label_map: where things are (``checkpoint_path`` is the ``ckpt-0`` prefix).
      source_checkpoint: the checkpoint that was exported.
      input_type: one of ``INPUT_TYPES``.
      min_score: detections scoring below it are dropped by the SavedModel.
      mixed_precision: the graph's compute precision (``float32`` or ``bfloat16``).
      inputs / outputs: signature tensor name -> ``"dtype [shape]"``.
      max_abs_diff: per output, largest |reloaded - in memory| on the check image.
      seconds: the whole export; reload_seconds: ``tf.saved_model.load`` alone.
      format: one of ``tfmask.export.formats.FORMATS``; model_path: the model
        that format runs (``saved_model_dir`` for ``savedmodel``).
      converted_max_abs_diff / converted_tolerance: per output, largest
        |converted - SavedModel| on the check images, and the tolerances it met
        (empty for ``savedmodel``).
    """

    export_dir: str
    saved_model_dir: str
    checkpoint_path: str
    pipeline_config: str
    label_map: str
    source_checkpoint: str
    input_type: str
    min_score: float = 0.0
    mixed_precision: str = "float32"
    inputs: Dict[str, str] = field(default_factory=dict)
    outputs: Dict[str, str] = field(default_factory=dict)
    max_abs_diff: Dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    reload_seconds: float = 0.0
    format: str = "savedmodel"
    model_path: str = ""
    converted_max_abs_diff: Dict[str, float] = field(default_factory=dict)
    converted_tolerance: Dict[str, float] = field(default_factory=dict)


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


# Outputs with one entry per detection ([B, N, ...]), reordered by _detection_order.
_PER_DETECTION = ("detection_boxes", "detection_scores", "detection_classes",
                  "detection_masks", "detection_masks_reframed")
_MATCH_KEYS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def _detection_order(expected: Dict[str, np.ndarray], got: Dict[str, np.ndarray],
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


def _compare(expected: Dict[str, tf.Tensor], got: Dict[str, tf.Tensor],
             tolerance: float = _BOX_TOLERANCE,
             names: Tuple[str, str] = ("the in-memory model", "the reloaded SavedModel")
             ) -> Dict[str, float]:
    """Max |got - expected| per output; raises on one out of tolerance.

    Detections are compared as sets: ``got``'s are first put in ``expected``'s order
    (:func:`_detection_order`), so a swap of near-tied scores passes while a detection,
    box, score, class or mask that differs still fails. ``names``: what ``expected`` and
    ``got`` come from, for the error message.
    """
    want_name, got_name = names
    expected = {k: np.asarray(v) for k, v in expected.items()}
    got = {k: np.asarray(v) for k, v in got.items()}
    order = _detection_order(expected, got, tolerance)
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

    Detections are matched as sets (:func:`_compare`), each output within ``tolerance``.
    ``input_type``, ``full_image_masks`` and ``min_score`` are the export's.

    Returns:
      (max abs difference per output, seconds ``tf.saved_model.load`` took).

    Raises:
      ExportVerificationError: an output is missing or differs (named).
    """
    image = verification_image()
    expected = detect(model, prep, tf.constant(image[None]), "image_tensor", full_image_masks,
                      min_score)
    start = time.perf_counter()
    loaded = tf.saved_model.load(str(saved_model_dir))
    reload_s = time.perf_counter() - start
    got = loaded.signatures[SIGNATURE](**{INPUT_NAME: verification_input(input_type, image)})
    return _compare(expected, got, tolerance), reload_s


def find_checkpoint(checkpoint_dir: PathLike) -> str:
    """The newest checkpoint in a folder, in an export folder's ``checkpoint/``, or a
    checkpoint prefix given directly."""
    path = str(checkpoint_dir)
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
        latest = tf.train.latest_checkpoint(os.path.join(path, "checkpoint"))
    if latest is None and Path(path + ".index").is_file():
        latest = path
    if latest is None:
        raise DataError(path, "no checkpoint found in this folder")
    return latest


def restore_model(params, checkpoint: str):
    """Builds the Model Garden model of ``params`` and restores ``checkpoint`` into it.

    Built with :func:`tfmask.modeling.factory.build_maskrcnn` (Model Garden's
    ``factory.build_maskrcnn``, as its own exporter does, plus torchvision's
    model) rather than ``MaskRCNNTask.build_model``: the task's warm-up call
    through Keras' ``__call__`` records input specs, and ``tf.saved_model.save``
    then re-traces the model in training mode (which needs ground truth) and
    fails. A warm-up through ``model.call`` creates the variables instead.

    Raises:
      DataError: the checkpoint does not hold this model's variables.
    """
    import tf_keras
    from tfmask.modeling import factory

    import tfmask.training.task  # noqa: F401  registers tfmask's configs and backbone

    prep = Preprocessing.from_model_config(params.task.model)
    model = factory.build_maskrcnn(
        input_specs=tf_keras.layers.InputSpec(shape=[None, *prep.padded_hw, 3]),
        model_config=params.task.model)
    detect(model, prep, tf.zeros([1, *prep.padded_hw, 3], tf.uint8))  # creates variables
    try:
        status = tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
        raise DataError(checkpoint, "checkpoint does not match the model of this "
                        f"pipeline.config ({first})", kind="checkpoint") from None
    return model


@contextlib.contextmanager
def _quiet_tf_logger() -> Iterator[None]:
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def _describe(spec) -> str:
    dims = ", ".join("None" if d is None else str(d) for d in spec.shape.as_list())
    return f"{spec.dtype.name} [{dims}]"


def _check_output_dir(out: Path) -> None:
    """Only an earlier export (or an empty folder) may be replaced."""
    if out.is_file():
        raise ConfigError(f"export_dir {out} is a file", params=("export_dir",))
    if out.is_dir() and any(out.iterdir()) and not (out / "saved_model").is_dir():
        raise ConfigError(f"export_dir {out} exists and is not an export (no saved_model/ "
                          "inside); choose a new folder so nothing is deleted",
                          params=("export_dir",))


def _serving_params(params, say: Callable[[str], None]):
    """``params`` as exported: warns of a detection limit below the densest image and
    swaps an NMS that needs a fixed batch size for ``batched``."""
    from tfmask.training.records_check import detections_limit_warning

    too_few = detections_limit_warning(params)  # dense scenes: the model's output capacity
    if too_few:
        say(f"warning: {too_few}")
    generator = params.task.model.detection_generator
    if generator.nms_version not in _DYNAMIC_BATCH_NMS:  # as Model Garden's exporter does
        say(f"nms_version '{generator.nms_version}' needs a fixed batch size; exporting "
            "with 'batched'")
        generator.nms_version = "batched"
    return params


def _check_arguments(input_type: str, min_score: float, mixed_precision: str,
                     fmt: str = "savedmodel") -> None:
    """Fails early on an unknown input type or format, a NaN ``min_score``, a precision
    this machine cannot run natively, or a format this export cannot have (or whose
    packages are not installed)."""
    from tfmask.export import formats

    input_spec(input_type)
    check_export_precision(mixed_precision)
    if math.isnan(min_score):  # would silently drop every detection
        raise ConfigError("min_score must be a number, got nan", params=("min_score",))
    formats.check_export_format(fmt, input_type, mixed_precision)


def _write_export(tmp: Path, module, model, pipeline_config_path: PathLike, label_map,
                  say: Callable[[str], None]):
    """The SavedModel, a checkpoint of the model, the pipeline.config and the label map,
    written into ``tmp``; returns the serving signature's concrete function."""
    say("writing the SavedModel")
    concrete = module.serve.get_concrete_function()
    with _quiet_tf_logger():  # "Skipping full serialization" of unbuilt Keras layers
        tf.saved_model.save(module, str(tmp / "saved_model"), signatures={SIGNATURE: concrete})
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, **model.checkpoint_items),
        str(tmp / "checkpoint"), max_to_keep=1)
    manager.save(checkpoint_number=0)
    shutil.copyfile(pipeline_config_path, tmp / "pipeline.config")
    label_map.write(tmp / "label_map.pbtxt")
    return concrete


def export_model(pipeline_config_path: PathLike, trained_checkpoint_dir: PathLike,
                 export_dir: PathLike, input_type: str = "image_tensor",
                 full_image_masks: bool = False, min_score: float = 0.0,
                 say: Callable[[str], None] = lambda s: None,
                 mixed_precision: str = "float32", format: str = "savedmodel"  # noqa: A002
                 ) -> ExportResult:
    """Exports the newest checkpoint of ``trained_checkpoint_dir`` (see module docstring).

    ``min_score`` > 0 drops detections scoring below it from the outputs (and
    spares the mask head their boxes); 0.0 keeps what the pipeline.config's
    second-stage post-processing keeps. ``mixed_precision`` ``bfloat16`` exports a graph
    computing in bfloat16 (:mod:`tfmask.export.precision`; outputs stay float32).
    ``format`` ``onnx`` or ``openvino`` also converts the verified SavedModel and
    checks the converted model against it (:mod:`tfmask.export.convert`); every
    export records its format in ``OUT/export.json`` (:mod:`tfmask.export.formats`).

    Raises:
      DataError: no checkpoint, or one that does not match the pipeline.config's model;
        errors of the pipeline.config or its label map.
      ConfigError: unknown input type or format, a NaN ``min_score``, an output folder
        that is not an export, a precision this machine cannot run natively, a format
        that cannot take this input type or precision, or whose packages are missing.
      ExportVerificationError: the reloaded SavedModel disagrees with the model, or
        the converted model with the SavedModel.
    """
    from tfmask.config.translate import translate
    from tfmask.export.convert import write_export_info

    start = time.perf_counter()
    _check_arguments(input_type, min_score, mixed_precision, format)
    out = Path(os.path.abspath(export_dir))  # a real name even for "."
    restore_aside_dir(out)  # a swap interrupted by a kill is undone first
    _check_output_dir(out)
    translation = translate(pipeline_config_path)
    params = _serving_params(translation.params, say)
    checkpoint = find_checkpoint(trained_checkpoint_dir)
    say(f"restoring {checkpoint}")
    with compute_policy(mixed_precision):  # layers keep the policy they are built with
        model = restore_model(params, checkpoint)
    prep = Preprocessing.from_model_config(params.task.model)
    module = DetectionServing(model, prep, input_type, full_image_masks, min_score)

    with atomic_dir(out) as tmp:  # built beside OUT, swapped in only when verified
        concrete = _write_export(tmp, module, model, pipeline_config_path,
                                 translation.label_map, say)
        say("checking the reloaded SavedModel against the model")
        diffs, reload_s = verify_export(tmp / "saved_model", model, prep, input_type,
                                        full_image_masks, min_score,
                                        TOLERANCE[mixed_precision])
        outputs = {name: _describe(spec)
                   for name, spec in sorted(concrete.structured_outputs.items())}
        info = write_export_info(tmp, format, input_type, min_score, outputs, say)
    return ExportResult(
        export_dir=str(out), saved_model_dir=str(out / "saved_model"),
        checkpoint_path=str(out / "checkpoint" / "ckpt-0"),
        pipeline_config=str(out / "pipeline.config"), label_map=str(out / "label_map.pbtxt"),
        source_checkpoint=checkpoint, input_type=input_type, min_score=float(min_score),
        mixed_precision=mixed_precision,
        inputs={INPUT_NAME: _describe(input_spec(input_type))}, outputs=outputs,
        max_abs_diff=diffs, seconds=time.perf_counter() - start, reload_seconds=reload_s,
        format=format, model_path=str(out / info.model),
        converted_max_abs_diff=info.max_abs_diff, converted_tolerance=info.tolerance)

