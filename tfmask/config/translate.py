"""OD API ``pipeline.config`` -> TF Model Garden Mask R-CNN experiment, as a table of sections.

The user's knob file stays the OD API's protobuf text format. This module
reads it (:mod:`tfmask.config.textproto`) and runs :data:`SECTIONS` in order,
one function per part of the file; each reads its fields through the
honoured-field ledger (:class:`tfmask.config.fields.Ledger`) and writes its
part of a Model Garden ``ExperimentConfig`` built from the
``tfmask_maskrcnn`` experiment (Model Garden's ``maskrcnn_resnetfpn_coco``
with tfmask's backbone and augmentation additions, :mod:`tfmask.training.task`).
Absent fields take the OD API's proto defaults where Model Garden has the
setting (e.g. ``second_stage_batch_size`` 64). Every field the file sets that is
not honoured is listed (a warning at start, an error with ``strict=True``):
the ledger records each field a section reads, so the list is exact rather
than hand-maintained. A last step (:func:`tfmask.config.sizes.fit_sizes`)
lowers the sizes Model Garden's samplers cannot fill, with a note.

Conventions worth knowing:

* OD API ``num_classes`` excludes the background; Model Garden's includes it
  (``num_classes + 1``). The label map's largest id must equal ``num_classes``.
* Image size: Model Garden always resizes keeping the aspect ratio and pads to
  ``input_size``; both OD API resizers set ``input_size`` (must be divisible
  by ``2**max_level``).
* Paths resolve against the config file's folder; ``PATH_TO_BE_CONFIGURED``
  left in a path is an error naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

from tfmask.config import model_sections as model
from tfmask.config import readers, train_config
from tfmask.config.fields import Ledger
from tfmask.config.fine_tune import fine_tune
from tfmask.config.label_map import LabelMap
from tfmask.config.sizes import fit_sizes
from tfmask.config.textproto import read_text_file
from tfmask.errors import ConfigError, PathLike

# The parts of a pipeline.config, in the order they are translated (later
# sections read what earlier ones wrote).
SECTIONS: Tuple[Tuple[str, Callable[[Ledger], None]], ...] = (
    ("classes and label map", model.classes),
    ("backbone, levels, image size", model.backbone),
    ("anchors", model.anchors),
    ("RPN", model.rpn),
    ("box head", model.box_head),
    ("mask head", model.mask_head),
    ("post-processing", model.post_processing),
    ("losses", model.losses),
    ("schedule", train_config.schedule),
    ("data", readers.data),
    ("augmentation", train_config.augmentation),
    ("fine-tune", fine_tune),
    ("sizes Model Garden needs", fit_sizes),
)
_RUNTIME = {"mixed_precision_dtype": "float32", "enable_xla": False,
            "distribution_strategy": "one_device", "num_gpus": 0}


@dataclass
class Translation:
    """A translated pipeline.config.

    Attributes:
      params: the Model Garden ``ExperimentConfig`` (validated, unlocked).
      label_map: the train input's label map.
      ignored: field paths set in the file but not honoured.
      notes: how approximated fields were mapped (for the user's log).
      config_path: the pipeline.config file.
      frozen_groups: model groups (``TRAINABLE_GROUPS``) not trained in this run.
      honoured: field paths set in the file and honoured, in file order.
    """

    params: Any
    label_map: LabelMap
    ignored: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    config_path: Optional[str] = None
    frozen_groups: List[str] = field(default_factory=list)
    honoured: List[str] = field(default_factory=list)


def translate(config_path: PathLike, strict: bool = False) -> Translation:
    """Reads a pipeline.config and builds the Model Garden experiment.

    Raises:
      DataError: syntax errors (line, column), ``PATH_TO_BE_CONFIGURED`` left
        in a path, unreadable label map.
      ConfigError: unsupported or inconsistent settings (num_classes vs the
        label map, unknown feature extractor/augmentation/optimizer, an OD API
        checkpoint as fine_tune_checkpoint), and with ``strict`` any field that
        is not honoured. Each names the file and the field.
    """
    config_path = Path(config_path)
    try:
        return _translate(config_path, strict)
    except ConfigError as exc:
        if str(exc).startswith(str(config_path)):
            raise
        # Errors from the sections name the field, not the file: add it.
        raise ConfigError(f"{config_path}: {exc}", params=exc.params) from None


def _translate(config_path: Path, strict: bool) -> Translation:
    from official.core import exp_factory
    from tfmask.training.task import EXPERIMENT  # registers tfmask's experiment

    msg = read_text_file(config_path)
    root_model = msg.get("model")
    if not (hasattr(root_model, "has") and root_model.has("faster_rcnn")):
        raise ConfigError("model must be faster_rcnn { ... } (Mask R-CNN is faster_rcnn "
                          "with a mask_rcnn_box_predictor)")
    ex = Ledger(msg, config_path)
    for _, section in SECTIONS:
        section(ex)
    params = exp_factory.get_exp_config(EXPERIMENT)
    params.override({"runtime": _RUNTIME, **ex.overrides}, is_strict=True)
    params.validate()
    ignored = ex.ignored()
    if strict and ignored:
        raise ConfigError(f"strict: fields not honoured: {', '.join(ignored)}",
                          params=("strict",))
    return Translation(params, ex.extras["label_map"], ignored, ex.notes, str(config_path),
                       ex.extras["frozen_groups"], ex.honoured())
