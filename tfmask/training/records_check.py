"""Checks the training and eval records against the experiment before the first step.

Run by :mod:`tfmask.training.loop` after the command-line options are applied
and before the params are locked. It reads every record (CRCs checked, no
TensorFlow: :mod:`tfmask.data.records.scan`), so a corrupt or foreign file
stops the run with ``error: FILE: reason`` instead of a TensorFlow traceback
minutes into training, and then:

* **Ground-truth slots** (``max_number_of_boxes`` in the pipeline.config,
  Model Garden's ``parser.max_num_instances``, default 100): Model Garden's
  parser silently drops every object past that many in an image. When the
  densest image holds more, the limit is *raised* to its count for training
  and evaluation, and a note names the image and the field (dense scenes -
  shelves of bottles, boxes, bags - are expected to just work).
* **Detections per image** (``max_total_detections``, Model Garden's
  ``detection_generator.max_num_detections``): the model can never return
  more. This changes what the model outputs, so it is not raised: a warning
  names the count and the field to set; ``strict`` makes it an error.
* Negatives (images without objects) are counted and reported; they train
  as background.

See ``docs/dense_scenes.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from tfmask.data.records.scan import RecordStats, scan_records
from tfmask.errors import ConfigError, DataError

BOXES_FIELD = "train_input_reader.max_number_of_boxes"
DETECTIONS_FIELD = ("model.faster_rcnn.second_stage_post_processing.batch_non_max_suppression."
                    "max_total_detections")


@dataclass
class RecordsCheck:
    """What :func:`check_records` found and changed.

    Attributes:
      train / eval: statistics of the training and eval records.
      max_instances: objects in the densest image of either.
      instance_slots: ``max_num_instances`` after the check.
      raised_from: the limit before it was raised (None when it sufficed).
      lines: notes and warnings for the user, in order.
    """

    train: RecordStats
    eval: Optional[RecordStats]
    max_instances: int
    instance_slots: int
    raised_from: Optional[int] = None
    lines: List[str] = field(default_factory=list)


def _densest(train: RecordStats, evaluated: Optional[RecordStats]) -> RecordStats:
    if evaluated is not None and evaluated.max_instances > train.max_instances:
        return evaluated
    return train


def detections_warning(densest: int, name: Optional[str], limit: int) -> Optional[str]:
    """The warning when ``limit`` detections per image cannot cover ``densest`` objects."""
    if densest <= limit:
        return None
    return (f"max_total_detections {limit} is below the {densest} objects of the densest "
            f"image ({name}): the model returns at most {limit} detections per image; set "
            f"{DETECTIONS_FIELD} (and max_detections_per_class) to at least {densest}")


def check_records(params, train: bool = True, strict: bool = False) -> RecordsCheck:
    """Scans the records of ``params`` (unlocked Model Garden params) and fits the limits.

    Args:
      params: the experiment; ``task.{train,validation}_data.parser.max_num_instances``
        are raised in place when an image holds more objects.
      train: False for an evaluation-only run (the training records are not read).
      strict: refuse a ``max_total_detections`` below the densest image.

    Raises:
      DataError: a record file is missing, corrupt or not image examples; the
        training records hold no example.
      ConfigError: ``strict`` and too few detections per image.
    """
    task = params.task
    eval_stats = scan_records(task.validation_data.input_path)
    train_stats = scan_records(task.train_data.input_path) if train else eval_stats
    if train and train_stats.examples == 0:
        raise DataError(train_stats.files[0], "the training records hold no example")
    densest = _densest(train_stats, eval_stats)
    slots = int(task.train_data.parser.max_num_instances)
    result = RecordsCheck(train_stats, eval_stats, densest.max_instances, slots)
    if densest.max_instances > slots:
        result.raised_from = slots
        result.instance_slots = densest.max_instances
        for data in (task.train_data, task.validation_data):
            data.parser.max_num_instances = max(int(data.parser.max_num_instances),
                                                densest.max_instances)
        result.lines.append(
            f"note: max_number_of_boxes {slots} -> {densest.max_instances}: the densest image "
            f"({densest.densest_filename} in {densest.densest_file}) has "
            f"{densest.max_instances} objects, and Model Garden drops the objects past the "
            f"limit (set {BOXES_FIELD} to choose it yourself)")
    limit = int(task.model.detection_generator.max_num_detections)
    warning = detections_warning(densest.max_instances, densest.densest_filename, limit)
    if warning and strict:
        raise ConfigError(f"strict: {warning}", params=("strict",))
    if warning:
        result.lines.append(f"warning: {warning}")
    if train and train_stats.negatives:
        result.lines.append(
            f"note: {train_stats.negatives} of {train_stats.examples} training images have "
            "no objects (negatives: they train as background)")
    return result


def detections_limit_warning(params) -> Optional[str]:
    """The export's check: ``max_total_detections`` against the densest image of the
    config's training and eval records, or None when it suffices or the records are
    not readable here (an export on another machine)."""
    densest: Optional[RecordStats] = None
    for data in (params.task.train_data, params.task.validation_data):
        try:
            stats = scan_records(data.input_path)
        except DataError:
            continue
        if densest is None or stats.max_instances > densest.max_instances:
            densest = stats
    if densest is None:
        return None
    return detections_warning(densest.max_instances, densest.densest_filename,
                              int(params.task.model.detection_generator.max_num_detections))
