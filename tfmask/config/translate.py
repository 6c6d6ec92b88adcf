"""OD API ``pipeline.config`` -> TF Model Garden Mask R-CNN experiment, in one place.

The user's knob file stays the OD API's protobuf text format. This module
reads it (:mod:`tfmask.config.textproto`), checks it, and writes every setting it
honours into a Model Garden ``ExperimentConfig`` built from the
``tfmask_maskrcnn`` experiment (Model Garden's ``maskrcnn_resnetfpn_coco``
with tfmask's backbone and augmentation additions, :mod:`tfmask.training.task`).
Absent fields take the OD API's proto defaults where Model Garden has the
setting (e.g. ``second_stage_batch_size`` 64). Every field the file sets that is not
honoured is listed (a warning at start, an error with ``strict=True``):
:class:`Fields` records each field the translator reads, so the list is
exact rather than hand-maintained.

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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from tfmask.config.fields import Fields, is_used, leaf_paths, to_float, to_int
from tfmask.errors import ConfigError, DataError, PathLike
from tfmask.config.label_map import LabelMap, read_label_map
from tfmask.config.train_config import (AUGMENTATIONS, TRAINABLE_GROUPS, augmentations,  # noqa: F401
                                   frozen_groups, optimizer)
from tfmask.config.textproto import Message, read_text_file

# feature_extractor.type -> (backbone type, backbone kwargs, narrow CPU heads?)
FEATURE_EXTRACTORS: Dict[str, Tuple[str, Dict[str, Any], bool]] = {
    "faster_rcnn_resnet50_keras": ("resnet", {"model_id": 50}, False),
    "faster_rcnn_resnet50_fpn_keras": ("resnet", {"model_id": 50}, False),
    "faster_rcnn_resnet101_keras": ("resnet", {"model_id": 101}, False),
    "faster_rcnn_resnet101_fpn_keras": ("resnet", {"model_id": 101}, False),
    "faster_rcnn_resnet152_keras": ("resnet", {"model_id": 152}, False),
    "faster_rcnn_resnet152_fpn_keras": ("resnet", {"model_id": 152}, False),
    # tfmask's SAME-padded Inception-ResNet-v2 with FPN (the OD API's is single-level).
    "faster_rcnn_inception_resnet_v2_keras": ("inception_resnet_v2", {}, False),
    # tfmask's own: ResNet-10 + FPN 64 with narrow heads, ~1 step/s on 2 CPU cores.
    "tfmask_tiny_resnet10_fpn": ("resnet", {"model_id": 10}, True),
}
FINE_TUNE_TYPES = {"classification": "backbone", "detection": "all", "full": "all"}
METRICS_SETS = ("coco_detection_metrics", "coco_mask_metrics")
PLACEHOLDER = "PATH_TO_BE_CONFIGURED"
MAX_LEVEL = 10  # FPN levels 1..10: strides up to 1024 px
_OD_API_BASE_ANCHOR = 256.0  # grid_anchor_generator's default base_anchor_size


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
    """

    params: Any
    label_map: LabelMap
    ignored: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    config_path: Optional[str] = None
    frozen_groups: List[str] = field(default_factory=list)


def _resolve(base: Path, value: Any, field_name: str, config_path: PathLike) -> str:
    if not isinstance(value, str) or not value:
        raise DataError(config_path, f"{field_name} must be a non-empty quoted path",
                        kind="config")
    if PLACEHOLDER in value:
        raise DataError(config_path, f"{field_name} still holds '{value}'; replace "
                        f"{PLACEHOLDER} with a real path", kind="config")
    p = Path(os.path.expanduser(value))
    return os.path.normpath(p if p.is_absolute() else (base / p))


def _input_paths(reader: Fields, name: str, base: Path, config_path) -> List[str]:
    tf_reader = reader.sub("tf_record_input_reader")
    paths = tf_reader.get_all("input_path")
    if not paths:
        raise DataError(config_path, f"{name}.tf_record_input_reader.input_path is missing",
                        kind="config")
    return [_resolve(base, p, f"{name}.tf_record_input_reader.input_path", config_path)
            for p in paths]


def _l2_weights(msg: Message, used: set, prefix: str = "") -> List[float]:
    """Every ``regularizer.l2_regularizer.weight`` in the model, marking them read."""
    out = []
    for name, value in msg.items():
        key = f"{prefix}.{name}" if prefix else name
        if not isinstance(value, Message):
            continue
        if name == "l2_regularizer":
            out.append(to_float(value.get("weight", 0.0), f"{key}.weight", minimum=0.0))
            used.add(key)
        else:
            out.extend(_l2_weights(value, used, key))
    return out


def _anchors(frcnn: Fields, min_level: int, notes: List[str]) -> dict:
    kind, f = frcnn.sub("first_stage_anchor_generator").oneof()
    if kind == "multiscale_anchor_generator":
        return {"anchor_size": f.get_float("anchor_scale", 4.0),
                "num_scales": f.get_int("scales_per_octave", 2, minimum=1),
                "aspect_ratios": f.get_floats("aspect_ratios") or [0.5, 1.0, 2.0]}
    if kind == "grid_anchor_generator":
        scales = f.get_floats("scales") or [0.25, 0.5, 1.0, 2.0]
        base = f.get("base_anchor_size", None)
        if base is not None and not isinstance(base, Message):
            raise ConfigError(f"{f.path}.base_anchor_size must be a message {{ ... }}, "
                              f"got {base!r}")
        base_px = to_float(base.get("height", _OD_API_BASE_ANCHOR),
                           f"{f.path}.base_anchor_size.height") if base is not None \
            else _OD_API_BASE_ANCHOR
        f.get("height_stride")
        f.get("width_stride")
        smallest = min(scales) * base_px
        anchor_size = smallest / (2 ** min_level)
        notes.append(f"grid anchors {[s * base_px for s in scales]} px -> one FPN anchor size "
                     f"per level starting at {smallest:g} px (anchor_size {anchor_size:g})")
        return {"anchor_size": anchor_size, "num_scales": 1,
                "aspect_ratios": f.get_floats("aspect_ratios") or [0.5, 1.0, 2.0]}
    if kind is None:
        return {}
    raise ConfigError(f"unsupported anchor generator '{kind}'; valid: grid_anchor_generator, "
                      "multiscale_anchor_generator")


def translate(config_path: PathLike, strict: bool = False) -> Translation:
    """Reads a pipeline.config and builds the Model Garden experiment.

    Raises:
      DataError: syntax errors (line, column), ``PATH_TO_BE_CONFIGURED`` left
        in a path, unreadable label map.
      ConfigError: unsupported or inconsistent settings (num_classes vs the
        label map, unknown feature extractor/augmentation/optimizer), and with
        ``strict`` any field that is not honoured.
    """
    config_path = Path(config_path)
    try:
        return _translate(config_path, strict)
    except ConfigError as exc:
        if str(exc).startswith(str(config_path)):
            raise
        # Errors from the helpers (augmentations, optimizer...) name no file: add it.
        raise ConfigError(f"{config_path}: {exc}") from None


def _translate(config_path: Path, strict: bool) -> Translation:
    from official.core import exp_factory
    from tfmask.training.task import EXPERIMENT  # registers tfmask's experiment

    msg = read_text_file(config_path)
    base = config_path.resolve().parent
    used: set = set()
    notes: List[str] = []
    root = Fields(msg, "", used)
    model = root.sub("model")
    if not model.has("faster_rcnn"):
        raise ConfigError(f"{config_path}: model must be faster_rcnn {{ ... }} (Mask R-CNN "
                          "is faster_rcnn with a mask_rcnn_box_predictor)")
    frcnn = model.sub("faster_rcnn")
    frcnn.expect("number_of_stages", 3)
    train = root.sub("train_config")
    train_in = root.sub("train_input_reader")
    eval_cfg = root.sub("eval_config")
    eval_ins = root.subs("eval_input_reader")
    eval_in = eval_ins[0] if eval_ins else Fields(None, "eval_input_reader", used)

    # --- classes and label map
    num_classes = frcnn.get("num_classes")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"{config_path}: model.faster_rcnn.num_classes must be a positive "
                          "integer")
    lm_path = _resolve(base, train_in.get("label_map_path"),
                       "train_input_reader.label_map_path", config_path)
    label_map = read_label_map(lm_path, pixel_suffix=False)
    if label_map.max_id != num_classes or len(label_map.classes) != num_classes:
        raise ConfigError(f"{config_path}: num_classes is {num_classes} but the label map "
                          f"{lm_path} has {len(label_map.classes)} classes with ids up to "
                          f"{label_map.max_id}; they must agree")
    if eval_in.has("label_map_path"):
        _resolve(base, eval_in.get("label_map_path"), "eval_input_reader.label_map_path",
                 config_path)

    # --- backbone, levels, image size
    fe = frcnn.sub("feature_extractor")
    fe_type = fe.get_name("type")
    if fe_type not in FEATURE_EXTRACTORS:
        raise ConfigError(f"{config_path}: feature_extractor.type '{fe_type}' is not "
                          f"supported; valid: {', '.join(sorted(FEATURE_EXTRACTORS))}")
    backbone_type, backbone_kwargs, narrow = FEATURE_EXTRACTORS[fe_type]
    fpn = fe.sub("fpn")
    anchor_kind, anchor_gen = frcnn.sub("first_stage_anchor_generator").oneof()
    levels = {}
    for src in ([anchor_gen] if anchor_kind == "multiscale_anchor_generator" else []) + [fpn]:
        for name in ("min_level", "max_level"):
            if src.has(name):
                value = src.get_int(name, minimum=1, maximum=MAX_LEVEL)
                if levels.setdefault(name, value) != value:
                    raise ConfigError(f"{config_path}: {name} is {levels[name]} in the anchor "
                                      f"generator but {value} in feature_extractor.fpn")
    min_level = levels.get("min_level", 3 if narrow else 2)
    max_level = levels.get("max_level", 5 if narrow else 6)
    if min_level > max_level:
        raise ConfigError(f"{config_path}: min_level {min_level} is above max_level {max_level}")
    fpn_filters = fpn.get_int("additional_layer_depth", 64 if narrow else 256, minimum=1)
    resizer_kind, resizer = frcnn.sub("image_resizer").oneof()
    if resizer_kind == "fixed_shape_resizer":
        size_hw = (resizer.get_int("height", 600, minimum=1),
                   resizer.get_int("width", 1024, minimum=1))
    elif resizer_kind == "keep_aspect_ratio_resizer":
        side = resizer.get_int("max_dimension", 1024, minimum=1)
        size_hw = (side, side)
        resizer.expect("pad_to_max_dimension", True)
        min_dim = resizer.get("min_dimension")
        if min_dim is not None and min_dim != side:
            notes.append(f"keep_aspect_ratio_resizer: images are scaled so the longer side is "
                         f"{side} px; min_dimension {min_dim} only bounds the shorter side in "
                         "the OD API and has no Model Garden equivalent")
    else:
        raise ConfigError(f"{config_path}: image_resizer must be fixed_shape_resizer or "
                          "keep_aspect_ratio_resizer")
    stride = 2 ** max_level
    if size_hw[0] % stride or size_hw[1] % stride:
        raise ConfigError(f"{config_path}: image size {size_hw[1]}x{size_hw[0]} must be "
                          f"divisible by {stride} (2**max_level {max_level})")

    # --- heads, proposals, detections
    box_pred = frcnn.sub("second_stage_box_predictor").sub("mask_rcnn_box_predictor")
    box_pred.expect("predict_instance_masks", True)
    box_pred.expect("use_dropout", False)
    mask_h = box_pred.get_int("mask_height", 28, minimum=1)
    mask_w = box_pred.get_int("mask_width", mask_h, minimum=1)
    if mask_h != mask_w:
        raise ConfigError(f"{config_path}: mask_height and mask_width must be equal "
                          f"(got {mask_h} and {mask_w})")
    mask_crop = max(1, mask_h // 2)
    if mask_crop * 2 != mask_h:
        notes.append(f"mask_height {mask_h} -> predicted masks of {mask_crop * 2} px "
                     "(Model Garden upsamples an even ROI crop by 2)")
    mask_convs = box_pred.get_int("mask_prediction_num_conv_layers", 2 if narrow else 4,
                                  minimum=0)
    mask_depth = box_pred.get_int("mask_prediction_conv_depth", 0, minimum=0) or \
        (64 if narrow else 256)
    crop = frcnn.get_int("initial_crop_size", 14, minimum=1) // \
        frcnn.get_int("maxpool_stride", 2, minimum=1)
    frcnn.get("maxpool_kernel_size")
    nms_kind, nms = frcnn.sub("second_stage_post_processing").oneof()
    frcnn.sub("second_stage_post_processing").expect("score_converter", "SOFTMAX")
    max_total = nms.get_int("max_total_detections", 100, minimum=1)
    per_class = nms.get_int("max_detections_per_class", 100, minimum=1)
    proposals = frcnn.get_int("first_stage_max_proposals", 64 if narrow else 300, minimum=1)
    model = {
        "num_classes": num_classes + 1,
        "input_size": [size_hw[0], size_hw[1], 3],
        "min_level": min_level, "max_level": max_level,
        "anchor": _anchors(frcnn, min_level, notes) or {},
        "backbone": {"type": backbone_type, backbone_type: backbone_kwargs},
        "decoder": {"type": "fpn", "fpn": {"num_filters": fpn_filters}},
        "rpn_head": {"num_filters": 64 if narrow else 256},
        "detection_head": ({"num_convs": 0, "num_filters": 64, "num_fcs": 1, "fc_dims": 256}
                           if narrow else {}),
        "roi_generator": {
            "num_proposals": proposals, "test_num_proposals": proposals,
            "pre_nms_top_k": max(4 * proposals, 256), "test_pre_nms_top_k": max(4 * proposals, 256),
            "nms_iou_threshold": frcnn.get_float("first_stage_nms_iou_threshold", 0.7),
            "test_nms_iou_threshold": frcnn.get_float("first_stage_nms_iou_threshold", 0.7),
            "pre_nms_score_threshold": frcnn.get_float("first_stage_nms_score_threshold", 0.0),
            "test_pre_nms_score_threshold":
                frcnn.get_float("first_stage_nms_score_threshold", 0.0)},
        "roi_sampler": {"num_sampled_rois": frcnn.get_int("second_stage_batch_size", 64,
                                                          minimum=1)},
        "roi_aligner": {"crop_size": crop},
        "detection_generator": {
            "pre_nms_score_threshold": nms.get_float("score_threshold", 0.0),
            "nms_iou_threshold": nms.get_float("iou_threshold", 0.6),
            "max_num_detections": max_total, "pre_nms_top_k": max(per_class, max_total)},
        "mask_head": {"num_convs": mask_convs, "num_filters": mask_depth},
        "mask_roi_aligner": {"crop_size": mask_crop},
        "mask_sampler": {"num_sampled_masks": 16 if narrow else 128},
        "norm_activation": {"use_sync_bn": False},
    }
    if nms_kind not in (None, "batch_non_max_suppression"):
        raise ConfigError(f"{config_path}: second_stage_post_processing must use "
                          "batch_non_max_suppression")
    losses = {
        "rpn_box_weight": frcnn.get_float("first_stage_localization_loss_weight", 1.0),
        "rpn_score_weight": frcnn.get_float("first_stage_objectness_loss_weight", 1.0),
        "frcnn_box_weight": frcnn.get_float("second_stage_localization_loss_weight", 1.0),
        "frcnn_class_weight": frcnn.get_float("second_stage_classification_loss_weight", 1.0),
        "mask_weight": frcnn.get_float("second_stage_mask_prediction_loss_weight", 1.0),
        "l2_weight_decay": max(_l2_weights(msg.get("model"), used, "model") or [0.0]),
    }

    # --- training schedule, data, augmentation
    num_steps = train.get_int("num_steps", 0, minimum=0) or 200000
    batch_size = train.get_int("batch_size", 1, minimum=1)
    max_instances = max(train_in.get_int("max_number_of_boxes", 100, minimum=1), max_total)
    parser = {"max_num_instances": max_instances,
              "rpn_batch_size_per_im": frcnn.get_int("first_stage_minibatch_size", 256,
                                                     minimum=1),
              **augmentations(train)}
    for reader in (train_in, eval_in):
        reader.expect("load_instance_masks", True)
        reader.expect("mask_type", "PNG_MASKS")
    eval_in.expect("shuffle", False)
    eval_in.expect("num_epochs", 1)
    train_paths = _input_paths(train_in, "train_input_reader", base, config_path)
    eval_paths = (_input_paths(eval_in, "eval_input_reader", base, config_path)
                  if eval_in.has("tf_record_input_reader") else train_paths)
    metrics = eval_cfg.get_all("metrics_set")
    bad = [m for m in metrics if m not in METRICS_SETS]
    if bad:
        raise ConfigError(f"{config_path}: eval_config.metrics_set {bad[0]} is not supported; "
                          f"valid: {', '.join(METRICS_SETS)}")
    eval_cfg.expect("eval_instance_masks", True)
    eval_cfg.expect("use_moving_averages", False)
    eval_batch = eval_cfg.get_int("batch_size", 1, minimum=1)

    task: Dict[str, Any] = {
        # The base experiment points init_checkpoint at a cloud bucket; tfmask
        # never downloads at run time, so it starts empty unless configured.
        "init_checkpoint": "", "init_checkpoint_modules": "all",
        "model": model, "losses": losses, "annotation_file": None,
        # include_metrics_per_category stays unhonoured (listed): Model Garden's
        # per-category COCO metrics need a pycocotools fork and return nothing.
        "per_category_metrics": False,
        "train_data": {"input_path": train_paths, "global_batch_size": batch_size,
                       "is_training": True, "dtype": "float32", "parser": parser,
                       "shuffle_buffer_size": 256},
        "validation_data": {"input_path": eval_paths, "global_batch_size": eval_batch,
                            "is_training": False, "drop_remainder": False, "dtype": "float32",
                            "parser": {"max_num_instances": max_instances}},
    }
    ckpt = train.get("fine_tune_checkpoint")
    if ckpt:
        ckpt_type = train.get_name("fine_tune_checkpoint_type", "detection")
        if ckpt_type not in FINE_TUNE_TYPES:
            raise ConfigError(f"fine_tune_checkpoint_type '{ckpt_type}' is not supported; "
                              f"valid: {', '.join(FINE_TUNE_TYPES)}")
        task["init_checkpoint"] = _resolve(base, ckpt, "train_config.fine_tune_checkpoint",
                                           config_path)
        task["init_checkpoint_modules"] = FINE_TUNE_TYPES[ckpt_type]
        train.expect("fine_tune_checkpoint_version", "V2")

    frozen = frozen_groups(train)
    params = exp_factory.get_exp_config(EXPERIMENT)
    params.override({
        "runtime": {"mixed_precision_dtype": "float32", "enable_xla": False,
                    "distribution_strategy": "one_device", "num_gpus": 0},
        "task": task,
        "trainer": {"train_steps": num_steps, "optimizer_config": optimizer(train, num_steps),
                    "steps_per_loop": 1, "summary_interval": 1,
                    "checkpoint_interval": 1000, "max_to_keep": 5,
                    "validation_interval": 1000, "validation_steps": -1},
    }, is_strict=True)
    params.validate()

    ignored = [p for p in leaf_paths(msg) if not is_used(p, used)]
    if strict and ignored:
        raise ConfigError(f"{config_path}: --strict: fields not honoured: {', '.join(ignored)}")
    return Translation(params, label_map, ignored, notes, str(config_path), frozen)
