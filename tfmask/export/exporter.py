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
from typing import Callable, Dict, Iterator

import tensorflow as tf

from tfmask.atomic import atomic_dir, restore_aside_dir
from tfmask.errors import ConfigError, DataError, PathLike
from tfmask.export.precision import check_export_precision, compute_policy
from tfmask.export.serving import (INPUT_NAME, INPUT_TYPES, DetectionServing,  # noqa: F401
                                   Preprocessing, detect, input_spec)
# The check of an export against its model; the names stay importable from here.
from tfmask.export.verify import (MASK_MEAN_TOLERANCE, SIGNATURE, TOLERANCE,  # noqa: F401
                                  UNPAIRED_SHARE, VERIFY_SIZE_HW,
                                  ExportVerificationError, compare_outputs,
                                  verification_image, verification_input, verify_export)

_DYNAMIC_BATCH_NMS = ("batched", "v2", "v3")


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
      unpaired_detections: detections of the check image only one of the two had (a
        bfloat16 graph's near-tied detections: ``verify.UNPAIRED_SHARE``), 0 in float32.
      seconds: the whole export; reload_seconds: ``tf.saved_model.load`` alone.
      format: one of ``tfmask.export.formats.FORMATS``; model_path: the model
        that format runs (``saved_model_dir`` for ``savedmodel``).
      converted_max_abs_diff / converted_tolerance: per output, largest
        |converted - SavedModel| on the check images, and the tolerances it met
        (empty for ``savedmodel``); converted_unpaired: the most detections of one check
        image only one of the two had (near-tied proposals, ``convert.UNPAIRED_SHARE``).
      folded_norms: batch norms the SavedModel computes as the bias of the convolution
        before them (:mod:`tfmask.export.fold_norms`; the checkpoint keeps them);
        unfolded_norms: norm layer name -> why it was not folded.
      upsampling_rewritten: the SavedModel's mask head upsamples with a fused 1x1
        convolution and ``depth_to_space`` (:mod:`tfmask.export.mask_upsampling`).
      compute_dtype_weights: weights the SavedModel stores in their layers' compute
        dtype rather than float32 (a bfloat16 export's convolutions and fc layers;
        :func:`tfmask.export.precision.store_in_compute_dtype`), 0 in float32.
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
    unpaired_detections: int = 0
    seconds: float = 0.0
    reload_seconds: float = 0.0
    format: str = "savedmodel"
    model_path: str = ""
    converted_max_abs_diff: Dict[str, float] = field(default_factory=dict)
    converted_unpaired: int = 0
    converted_tolerance: Dict[str, float] = field(default_factory=dict)
    folded_norms: int = 0
    unfolded_norms: Dict[str, str] = field(default_factory=dict)
    upsampling_rewritten: bool = False
    compute_dtype_weights: int = 0



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


def _serving_params(params, say: Callable[[str], None], fmt: str = "savedmodel"):
    """``params`` as exported: warns of a detection limit below the densest image,
    swaps an NMS that needs a fixed batch size for ``batched``, and for the converted
    formats (``onnx``, ``openvino``) gives the proposals Model Garden's padded NMS:
    OpenVINO cannot convert TensorFlow's CombinedNonMaxSuppression, and tf2onnx's
    conversion of it picked other proposals than TensorFlow on some test images."""
    from tfmask.training.records_check import detections_limit_warning

    too_few = detections_limit_warning(params)  # dense scenes: the model's output capacity
    if too_few:
        say(f"warning: {too_few}")
    generator = params.task.model.detection_generator
    if generator.nms_version not in _DYNAMIC_BATCH_NMS:  # as Model Garden's exporter does
        say(f"nms_version '{generator.nms_version}' needs a fixed batch size; exporting "
            "with 'batched'")
        generator.nms_version = "batched"
    proposals = params.task.model.roi_generator
    if fmt in ("onnx", "openvino") and proposals.use_batched_nms:
        say(f"{fmt}: proposals use Model Garden's padded NMS (TensorFlow's "
            "CombinedNonMaxSuppression does not convert faithfully)")
        proposals.use_batched_nms = False
    return params


def _check_arguments(input_type: str, min_score: float, mixed_precision: str,
                     fmt: str = "savedmodel", full_image_masks: bool = False) -> None:
    """Fails early on an unknown input type or format, a NaN ``min_score``, a precision
    this machine cannot run natively, or a format this export cannot have (or whose
    packages are not installed; OpenVINO with full-image masks)."""
    from tfmask.export import formats

    input_spec(input_type)
    check_export_precision(mixed_precision)
    if math.isnan(min_score):  # would silently drop every detection
        raise ConfigError("min_score must be a number, got nan", params=("min_score",))
    formats.check_export_format(fmt, input_type, mixed_precision, full_image_masks)


def _write_export(tmp: Path, model, prep: Preprocessing, serving_options: dict,
                  pipeline_config_path: PathLike, label_map, say: Callable[[str], None]):
    """A checkpoint of the model, the pipeline.config, the label map and the SavedModel
    (after the checkpoint is written, of the model rewritten for serving:
    :mod:`tfmask.export.rewrites`; ``serving_options``: the :class:`DetectionServing`
    arguments), written into ``tmp``; returns the serving signature's concrete function
    and the :class:`~tfmask.export.rewrites.ServingRewrites`."""
    from tfmask.export.rewrites import rewrite_for_serving

    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, **model.checkpoint_items),
        str(tmp / "checkpoint"), max_to_keep=1)
    manager.save(checkpoint_number=0)  # the trained variables, before folding
    shutil.copyfile(pipeline_config_path, tmp / "pipeline.config")
    label_map.write(tmp / "label_map.pbtxt")
    done = rewrite_for_serving(model, prep)
    folded = done.folded
    say(f"folded {len(folded.folded)} batch norms into their convolutions"
        + (f" ({len(folded.left)} left: called more than once or not after a convolution)"
           if folded.left else ""))
    say("mask head upsampling: " + ("a fused 1x1 convolution + depth_to_space"
                                    if not done.upsampling else
                                    f"kept as Model Garden's ({done.upsampling})"))
    if done.stored:
        say(f"stored {done.stored} weights in their layers' compute dtype (no cast per call)")
    module = DetectionServing(model, prep, **serving_options)  # the folded variables
    say("writing the SavedModel")
    concrete = module.serve.get_concrete_function()
    with _quiet_tf_logger():  # "Skipping full serialization" of unbuilt Keras layers
        tf.saved_model.save(module, str(tmp / "saved_model"), signatures={SIGNATURE: concrete})
    return concrete, done


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
    _check_arguments(input_type, min_score, mixed_precision, format, full_image_masks)
    out = Path(os.path.abspath(export_dir))  # a real name even for "."
    restore_aside_dir(out)  # a swap interrupted by a kill is undone first
    _check_output_dir(out)
    translation = translate(pipeline_config_path)
    params = _serving_params(translation.params, say, format)
    checkpoint = find_checkpoint(trained_checkpoint_dir)
    say(f"restoring {checkpoint}")
    with compute_policy(mixed_precision):  # layers keep the policy they are built with
        model = restore_model(params, checkpoint)
    prep = Preprocessing.from_model_config(params.task.model)
    serving_options = {"input_type": input_type, "full_image_masks": full_image_masks,
                       "min_score": min_score}

    with atomic_dir(out) as tmp:  # built beside OUT, swapped in only when verified
        concrete, done = _write_export(
            tmp, model, prep, serving_options, pipeline_config_path, translation.label_map, say)
        say("checking the reloaded SavedModel against the model")
        diffs, reload_s = verify_export(tmp / "saved_model", model, prep, input_type,
                                        full_image_masks, min_score,
                                        TOLERANCE[mixed_precision],
                                        MASK_MEAN_TOLERANCE[mixed_precision],
                                        UNPAIRED_SHARE[mixed_precision])
        unpaired = int(diffs.pop("unpaired_detections", 0))
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
        max_abs_diff=diffs, unpaired_detections=unpaired,
        seconds=time.perf_counter() - start, reload_seconds=reload_s,
        format=format, model_path=str(out / info.model),
        converted_max_abs_diff=info.max_abs_diff, converted_tolerance=info.tolerance,
        converted_unpaired=info.unpaired_detections,
        folded_norms=len(done.folded.folded), unfolded_norms=dict(done.folded.left),
        upsampling_rewritten=not done.upsampling, compute_dtype_weights=done.stored)

